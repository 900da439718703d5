"""Delivery status notifications (RFC 3464, RFC 3461 §6, RFC 6533 for SMTPUTF8 mail).

Pure functions: the clock and every name come in as arguments, the complete notification comes out as bytes
with CRLF line ends. The caller sends it with the null reverse-path `<>` (RFC 5321 §4.5.5), so a notification
is never answered by another one, and with SMTPUTF8/8BITMIME when the bytes are not ASCII.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from kittiwake.mail.dates import format_rfc5322_date
from kittiwake.mail.headers import first_field, parse_header_fields

NotificationKind = Literal["failure", "delay", "success"]
RecipientAction = Literal["failed", "delayed", "delivered", "relayed", "expanded"]
ReturnContent = Literal["FULL", "HDRS"]

# Larger originals come back as their header only: the notification itself has to stay deliverable.
RETURN_LIMIT = 1_000_000

_SUBJECTS: dict[NotificationKind, str] = {
    "failure": "Undelivered Mail Returned to Sender",
    "delay": "Delayed Mail (still being retried)",
    "success": "Successful Mail Delivery Report",
}
_STATUS_CODE = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_XTEXT_HEX = re.compile(r"\+([0-9A-Fa-f]{2})")
# RFC 6533 §3: utf-8-addr-xtext escapes a character as \x{HEX}.
_UNITEXT_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_LINE_END = re.compile(rb"\r?\n")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientStatus:
    """What happened to one recipient: one per-recipient block of the report (RFC 3464 §2.3)."""

    address: str
    original_recipient: str | None = None  # the ORCPT value as received: "addr-type;xtext" (RFC 3461 §4.2)
    action: RecipientAction
    status: str  # RFC 3463 enhanced status code, e.g. "5.1.1"
    remote_mta: str | None = None
    diagnostic: str | None = None  # the remote server's reply, lines joined by CRLF or LF
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None  # delayed recipients only (RFC 3464 §2.3.7)


def is_null_sender(sender: str) -> bool:
    """Whether the reverse-path is the null path; RFC 5321 §4.5.5: no notification is ever sent to it."""
    return sender.strip() in ("", "<>")


def should_notify(
    notify: tuple[str, ...] | None, kind: NotificationKind, *, delay_by_default: bool = True
) -> bool:
    """Whether RCPT's NOTIFY parameter asks for a notification of this kind (RFC 3461 §4.1).

    NOTIFY=NEVER asks for none. Without NOTIFY the server sends failures and, at its discretion (here
    `delay_by_default`), delays, never successes.
    """
    if notify is None:
        return kind == "failure" or (kind == "delay" and delay_by_default)
    keywords = {keyword.strip().upper() for keyword in notify}
    if "NEVER" in keywords:
        return False
    return kind.upper() in keywords


def compose_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    recipients: Sequence[RecipientStatus],
    original_message: bytes,
    ret: ReturnContent | None,
    envid: str | None,
    arrival: datetime,
    now: datetime,
    kind: NotificationKind,
    message_id_domain: str,
    return_limit: int = RETURN_LIMIT,
) -> bytes:
    """Build a complete multipart/report notification (RFC 3464 §2, RFC 6522) for `recipients`.

    `envid` is the ENVID parameter as received (xtext). The original comes back whole for a failure when
    RET=FULL or RET is absent and it fits in `return_limit`; otherwise only its header is returned.
    An original with UTF-8 header fields or addresses gets the RFC 6533 message/global forms.
    """
    if not recipients:
        raise ValueError("a delivery status notification needs at least one recipient")
    if is_null_sender(original_sender):
        raise ValueError("no notification is sent to the null reverse-path")  # RFC 5321 §4.5.5
    original = _LINE_END.sub(b"\r\n", original_message)
    header, _body = _split_header(original)
    utf8 = (
        not header.isascii()
        or not original_sender.isascii()
        or any(not r.address.isascii() for r in recipients)
    )
    whole = kind == "failure" and ret != "HDRS" and len(original) <= return_limit
    parts = [
        _text_part(reporting_mta, recipients, kind, whole, utf8),
        _status_part(reporting_mta, recipients, envid, arrival, utf8),
        _returned_part(original if whole else header, whole, utf8),
    ]
    seed = b"".join([now.isoformat().encode(), kind.encode(), *parts])
    token = hashlib.sha256(seed).hexdigest()[:32]
    boundary = f"=_dsn_{token}"
    headers = _top_header(
        reporting_mta, original_sender, kind, now, f"<{token}@{message_id_domain}>", boundary, header, utf8
    )
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return headers + b"\r\n" + body + b"--" + boundary.encode() + b"--\r\n"


def _split_header(message: bytes) -> tuple[bytes, bytes]:
    """(header block ending in CRLF, body) of a CRLF message; a message without a body is all header."""
    if message.startswith(b"\r\n"):
        return b"", message[2:]
    match = _HEADER_END.search(message)
    if match is None:
        return (message if message.endswith(b"\r\n") or not message else message + b"\r\n"), b""
    return message[: match.start()] + b"\r\n", message[match.end() :]


def _clean(text: str, utf8: bool) -> str:
    """One header-safe line: control characters become spaces; without UTF-8, non-ASCII becomes "?"."""
    text = _UNSAFE.sub(" ", text).strip()
    return text if utf8 else text.encode("ascii", "replace").decode("ascii")


def _reply_lines(diagnostic: str, utf8: bool) -> list[str]:
    return [line for line in (_clean(part, utf8) for part in re.split(r"\r?\n", diagnostic)) if line]


def _top_header(
    reporting_mta: str,
    sender: str,
    kind: NotificationKind,
    now: datetime,
    message_id: str,
    boundary: str,
    original_header: bytes,
    utf8: bool,
) -> bytes:
    host = _clean(reporting_mta, utf8)
    report_type = "global-delivery-status" if utf8 else "delivery-status"
    lines = [
        f'From: "Mail Delivery System" <MAILER-DAEMON@{host}>',
        f"To: <{_clean(sender.strip().removeprefix('<').removesuffix('>'), utf8)}>",
        f"Subject: {_SUBJECTS[kind]}",
        f"Date: {format_rfc5322_date(now)}",
        f"Message-ID: {message_id}",
    ]
    original_id = first_field(parse_header_fields(original_header), "Message-ID")
    match = _MESSAGE_ID.search(original_id or "")
    if match is not None and (utf8 or match[0].isascii()):
        lines += [f"In-Reply-To: {match[0]}", f"References: {match[0]}"]
    lines += [
        # RFC 3834 §5: the notification is an automatic response to the original message.
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f"Content-Type: multipart/report; report-type={report_type};",
        f'\tboundary="{boundary}"',
    ]
    return "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")


def _text_part(
    reporting_mta: str, recipients: Sequence[RecipientStatus], kind: NotificationKind, whole: bool, utf8: bool
) -> bytes:
    intro = {
        "failure": "Your message could not be delivered to the recipients below. This is a permanent error.",
        "delay": "Your message has not yet been delivered to the recipients below. Delivery will be retried;"
        " you do not need to send it again.",
        "success": "Your message was delivered to the recipients below.",
    }[kind]
    attached = "The returned message is attached." if whole else "The header of your message is attached."
    lines = [f"This is the mail system at {_clean(reporting_mta, utf8)}.", "", intro, ""]
    for recipient in recipients:
        lines.append(f"<{_clean(recipient.address, utf8)}>: {_describe(recipient, utf8)}")
        if recipient.diagnostic:
            lines += ["    " + line for line in _reply_lines(recipient.diagnostic, utf8)]
        lines.append("")
    lines.append(attached)
    text = "".join(line + "\r\n" for line in lines).encode("utf-8", "surrogateescape")
    charset, encoding = ("utf-8", "8bit") if not text.isascii() else ("us-ascii", "7bit")
    head = f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode() + text


def _describe(recipient: RecipientStatus, utf8: bool) -> str:
    host = f"the server {_clean(recipient.remote_mta, utf8)}" if recipient.remote_mta else "the mail system"
    if recipient.action == "failed":
        said = f"{host} refused it" if recipient.diagnostic else "delivery failed"
        return f"{said} (status {recipient.status})."
    if recipient.action == "delayed":
        until = recipient.will_retry_until
        retry = f" Retrying until {format_rfc5322_date(until)}." if until is not None else ""
        return f"not delivered yet (status {recipient.status}).{retry}"
    return f"{recipient.action} by {host} (status {recipient.status})."


def _status_part(
    reporting_mta: str,
    recipients: Sequence[RecipientStatus],
    envid: str | None,
    arrival: datetime,
    utf8: bool,
) -> bytes:
    # RFC 3464 §2.2: the per-message fields, then one block per recipient, blocks separated by a blank line.
    message_fields = [f"Reporting-MTA: dns; {_clean(reporting_mta, utf8)}"]
    if envid:
        # RFC 3461 §4.4: ENVID travels as xtext; the report carries the identifier itself.
        message_fields.append(f"Original-Envelope-Id: {_clean(_decode_xtext(envid), utf8)}")
    message_fields.append(f"Arrival-Date: {format_rfc5322_date(arrival)}")
    blocks = [message_fields] + [_recipient_fields(recipient, utf8) for recipient in recipients]
    text = "\r\n".join("".join(field + "\r\n" for field in block) for block in blocks)
    subtype = "global-delivery-status" if utf8 else "delivery-status"
    encoding = "8bit" if utf8 else "7bit"
    head = f"Content-Type: message/{subtype}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode() + text.encode("utf-8", "surrogateescape")


def _recipient_fields(recipient: RecipientStatus, utf8: bool) -> list[str]:
    if not _STATUS_CODE.fullmatch(recipient.status):
        raise ValueError(f"not an enhanced status code: {recipient.status!r}")
    fields: list[str] = []
    if recipient.original_recipient:
        # RFC 3464 §2.3.1: present exactly when ORCPT was given for this recipient.
        fields.append(f"Original-Recipient: {_original_recipient(recipient.original_recipient, utf8)}")
    address = _clean(recipient.address, utf8)
    # RFC 6533 §3: a UTF-8 address has the address type "utf-8".
    fields.append(f"Final-Recipient: {'rfc822' if address.isascii() else 'utf-8'}; {address}")
    fields += [f"Action: {recipient.action}", f"Status: {recipient.status}"]
    if recipient.remote_mta:
        fields.append(f"Remote-MTA: dns; {_clean(recipient.remote_mta, utf8)}")
    if recipient.diagnostic:
        lines = _reply_lines(recipient.diagnostic, utf8)
        if lines:
            # A multi-line reply is folded: each reply line on a continuation line (RFC 5322 §2.2.3).
            fields.append("Diagnostic-Code: smtp; " + "\r\n ".join(lines))
    if recipient.last_attempt is not None:
        fields.append(f"Last-Attempt-Date: {format_rfc5322_date(recipient.last_attempt)}")
    if recipient.action == "delayed" and recipient.will_retry_until is not None:
        fields.append(f"Will-Retry-Until: {format_rfc5322_date(recipient.will_retry_until)}")
    return fields


def _decode_xtext(text: str) -> str:
    # RFC 3461 §4: xtext encodes "+", "=" and characters outside 33-126 as "+" and two hex digits.
    return _XTEXT_HEX.sub(lambda match: chr(int(match[1], 16)), text)


def _original_recipient(value: str, utf8: bool) -> str:
    address_type, _, encoded = value.partition(";")
    address_type = address_type.strip().lower()
    address = _decode_xtext(encoded.strip())
    if address_type == "utf-8":
        address = _UNITEXT_ESCAPE.sub(lambda match: _code_point(match[1]), address)
        if not utf8 and not address.isascii():
            # RFC 6533 §3: outside message/global-delivery-status the address stays in its escaped form.
            address = encoded.strip()
    return f"{_clean(address_type, utf8)}; {_clean(address, utf8)}"


def _code_point(digits: str) -> str:
    number = int(digits, 16)
    return chr(number) if number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF else "?"


def _returned_part(content: bytes, whole: bool, utf8: bool) -> bytes:
    # RFC 3464 §2.1 and RFC 3462: the whole message as message/rfc822, or its header as text/rfc822-headers;
    # RFC 6533 §6.3-6.4 name the UTF-8 forms message/global and message/global-headers.
    if whole:
        media_type = "message/global" if utf8 else "message/rfc822"
    else:
        media_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    encoding = "7bit" if content.isascii() else "8bit"
    head = f"Content-Type: {media_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return head.encode() + content
