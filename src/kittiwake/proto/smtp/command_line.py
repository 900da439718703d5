"""Parse one SMTP command line (without its CRLF): verb, path, ESMTP parameters.

Every function raises ``CommandError`` carrying the reply for the peer; nothing else escapes for any input.
Paths are returned as ``str``: the mailbox exactly as written (quoted local parts stay quoted), without the
angle brackets and without a source route.
"""

from __future__ import annotations

import binascii
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kittiwake.proto.smtp.errors import CommandError
from kittiwake.proto.smtp.events import (
    BodyType,
    MailFrom,
    MailParams,
    NotifyCondition,
    OriginalRecipient,
    RcptParams,
    RcptTo,
)
from kittiwake.proto.smtp.replies import (
    AUTH_CANCELLED_501,
    INVALID_PARAMETER_501,
    NON_ASCII_ADDRESS_553,
    UNKNOWN_PARAMETER_555,
    Reply,
    syntax_error,
)

# RFC 5321 §4.1.2 grammar, widened by RFC 6531 §3.3 to UTF-8 in atext, qtext and sub-domains. Whether
# non-ASCII is allowed at all is decided after matching (SMTPUTF8 given or not).
_UTF8 = "\u0080-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+\-/=?^_`{{|}}~{_UTF8}]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED_STRING = rf'"(?:[\x20\x21\x23-\x5b\x5d-\x7e{_UTF8}]|\\[\x20-\x7e])*"'
_LET_DIG = rf"[A-Za-z0-9{_UTF8}]"
_SUB_DOMAIN = rf"{_LET_DIG}(?:[A-Za-z0-9\-{_UTF8}]*{_LET_DIG})?"
_DOMAIN = rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*"
_ADDRESS_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_PATH_RE = re.compile(
    rf"<(?P<route>@{_DOMAIN}(?:,@{_DOMAIN})*:)?"
    rf"(?P<mailbox>(?P<local>{_DOT_STRING}|{_QUOTED_STRING})@(?P<domain>{_DOMAIN}|{_ADDRESS_LITERAL}))>"
)
_PARAM_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e" + _UTF8 + r"]+))?")
_XTEXT_RE = re.compile(r"(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*")
_XTEXT_HEX_RE = re.compile(rb"\+([0-9A-F]{2})")
_BDAT_RE = re.compile(rb"([0-9]{1,18})(?: +(LAST))? *", re.IGNORECASE)
_MECHANISM_RE = re.compile(r"[A-Z0-9_-]{1,20}")

# RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
MAX_PATH_LENGTH = 256
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 §4.5.3.1.1
MAX_ENVID_LENGTH = 100  # RFC 3461 §4.4
MAX_ORCPT_LENGTH = 500  # RFC 3461 §4.2


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedPath:
    mailbox: str
    source_route: bool


def split_verb(line: bytes) -> tuple[str, bytes]:
    """Split ``VERB[ argument]``; the verb is upper-cased ASCII ("" when it is not ASCII letters)."""
    verb, _, argument = line.partition(b" ")
    if not verb.isalpha() or not verb.isascii():
        return "", argument
    return verb.decode("ascii").upper(), argument


def decode_text(argument: bytes) -> str:
    try:
        return argument.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(syntax_error("Invalid UTF-8 in command")) from None


def parse_hello(argument: bytes) -> str:
    """The HELO/EHLO domain or address literal; leniently any single visible token (RFC 5321 §4.1.1.1)."""
    text = decode_text(argument).strip(" ")
    if not text or any(c.isspace() or ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        raise CommandError(Reply(code=501, enhanced=None, text="Syntax: EHLO hostname"))
    return text


def parse_path(text: str, *, bad_address: Reply) -> tuple[ParsedPath, str]:
    """Match one ``<path>`` at the start of ``text``; returns it and the rest of the text."""
    match = _PATH_RE.match(text)
    if match is None or len(match.group(0)) > MAX_PATH_LENGTH:
        raise CommandError(bad_address)
    if len(match.group("local").encode("utf-8")) > MAX_LOCAL_PART_LENGTH:
        raise CommandError(bad_address)
    domain = match.group("domain")
    if domain.startswith("[") and not _is_valid_address_literal(domain[1:-1]):
        raise CommandError(bad_address)
    # RFC 5321 §4.1.2 / Appendix C: source routes are accepted and the route is ignored.
    path = ParsedPath(mailbox=match.group("mailbox"), source_route=match.group("route") is not None)
    return path, text[match.end() :]


def _is_valid_address_literal(inner: str) -> bool:
    # RFC 5321 §4.1.3: IPv4 dotted quad or "IPv6:" followed by an IPv6 address; no general literals.
    try:
        if inner[:5].upper() == "IPV6:":
            ipaddress.IPv6Address(inner[5:])
        else:
            ipaddress.IPv4Address(inner)
    except ValueError:
        return False
    return True


def parse_mail(argument: bytes, *, enabled: frozenset[str]) -> MailFrom:
    """``FROM:<path> [params]``; ``enabled`` holds the EHLO keywords offered at this point."""
    text = decode_text(argument)
    match = re.match(r"FROM: ?", text, re.IGNORECASE)
    if match is None:
        raise CommandError(syntax_error("Syntax: MAIL FROM:<address>"))
    text = text[match.end() :]
    bad_sender = Reply(code=501, enhanced="5.1.7", text="Bad sender address syntax")
    if text.startswith("<>"):
        path, rest = ParsedPath(mailbox="", source_route=False), text[2:]
    else:
        path, rest = parse_path(text, bad_address=bad_sender)
    values = _parse_params(rest, _MAIL_PARAMS, enabled)
    params = MailParams(**values)
    # RFC 6531 §3.4: a non-ASCII path needs SMTPUTF8 on this MAIL command.
    if not params.smtputf8 and not path.mailbox.isascii():
        raise CommandError(NON_ASCII_ADDRESS_553)
    return MailFrom(reverse_path=path.mailbox, params=params, source_route=path.source_route)


def parse_rcpt(argument: bytes, *, enabled: frozenset[str], smtputf8: bool) -> RcptTo:
    """``TO:<path> [params]``; ``smtputf8`` says whether the transaction's MAIL carried SMTPUTF8."""
    text = decode_text(argument)
    match = re.match(r"TO: ?", text, re.IGNORECASE)
    if match is None:
        raise CommandError(syntax_error("Syntax: RCPT TO:<address>"))
    bad_recipient = Reply(code=501, enhanced="5.1.3", text="Bad recipient address syntax")
    path, rest = parse_path(text[match.end() :], bad_address=bad_recipient)
    if not smtputf8 and not path.mailbox.isascii():
        raise CommandError(NON_ASCII_ADDRESS_553)
    params = RcptParams(**_parse_params(rest, _RCPT_PARAMS, enabled))
    return RcptTo(forward_path=path.mailbox, params=params, source_route=path.source_route)


def parse_bdat(argument: bytes) -> tuple[int, bool]:
    """RFC 3030 §2: ``BDAT chunk-size [LAST]``."""
    match = _BDAT_RE.fullmatch(argument)
    if match is None:
        raise CommandError(syntax_error("Syntax: BDAT size [LAST]"))
    return int(match.group(1)), match.group(2) is not None


def parse_auth(argument: bytes) -> tuple[str, bytes | None]:
    """RFC 4954 §4: ``AUTH mechanism [initial-response]``; ``=`` is an empty initial response."""
    mechanism, _, initial = argument.partition(b" ")
    name = mechanism.decode("ascii", "replace").upper()
    if not _MECHANISM_RE.fullmatch(name):
        raise CommandError(syntax_error("Syntax: AUTH mechanism [initial-response]"))
    if not initial:
        return name, None
    if initial == b"=":
        return name, b""
    return name, decode_base64(initial)


def parse_sasl_response(line: bytes) -> bytes:
    """A client's answer to a 334 challenge; RFC 4954 §4: ``*`` cancels the exchange."""
    if line == b"*":
        raise CommandError(AUTH_CANCELLED_501)
    return decode_base64(line)


def decode_base64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise CommandError(syntax_error("Invalid base64 data")) from None


def decode_xtext(value: str) -> str:
    """RFC 3461 §4: ``+XX`` hex escapes; every other octet 33-126 except ``+`` and ``=`` stands for itself."""
    if not value.isascii() or _XTEXT_RE.fullmatch(value) is None:
        raise CommandError(INVALID_PARAMETER_501)
    raw = _XTEXT_HEX_RE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("ascii"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(INVALID_PARAMETER_501) from None


def _parse_params(text: str, table: dict[str, _ParamSpec], enabled: frozenset[str]) -> dict[str, Any]:
    if text and not text.startswith(" "):
        raise CommandError(syntax_error("Syntax error after the address"))
    values: dict[str, Any] = {}
    for token in text.split(" "):
        if not token:
            continue
        match = _PARAM_RE.fullmatch(token)
        if match is None:
            raise CommandError(syntax_error(f"Malformed parameter {token[:40]}"))
        keyword, value = match.group(1).upper(), match.group(2)
        spec = table.get(keyword)
        if spec is None or spec.extension not in enabled:
            raise CommandError(UNKNOWN_PARAMETER_555)
        if spec.field in values:
            raise CommandError(Reply(code=501, enhanced="5.5.4", text=f"Duplicate {keyword} parameter"))
        values[spec.field] = spec.parse(value, enabled)
    return values


@dataclass(frozen=True, slots=True, kw_only=True)
class _ParamSpec:
    field: str
    extension: str  # the EHLO keyword that must be offered for the parameter to be accepted
    parse: Callable[[str | None, frozenset[str]], object]


def _require(value: str | None) -> str:
    if value is None:
        raise CommandError(INVALID_PARAMETER_501)
    return value


def _parse_flag(value: str | None, enabled: frozenset[str]) -> bool:
    if value is not None:
        raise CommandError(INVALID_PARAMETER_501)
    return True


def _parse_size(value: str | None, enabled: frozenset[str]) -> int:
    # RFC 1870 §3: size-value ::= 1*20DIGIT
    text = _require(value)
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise CommandError(INVALID_PARAMETER_501)
    return int(text)


def _parse_body(value: str | None, enabled: frozenset[str]) -> BodyType:
    # RFC 6152 §2 (7BIT, 8BITMIME) and RFC 3030 §3 (BINARYMIME, only with CHUNKING offered too).
    text = _require(value).upper()
    if text == "7BIT":
        return "7BIT"
    if text == "8BITMIME":
        return "8BITMIME"
    if text == "BINARYMIME" and "BINARYMIME" in enabled:
        return "BINARYMIME"
    raise CommandError(INVALID_PARAMETER_501)


def _parse_auth_param(value: str | None, enabled: frozenset[str]) -> str:
    # RFC 4954 §5: AUTH=<> or AUTH=xtext(mailbox); kept so the session may trust it for relayed mail.
    text = _require(value)
    return "<>" if text == "<>" else decode_xtext(text)


def _parse_ret(value: str | None, enabled: frozenset[str]) -> str:
    text = _require(value).upper()
    if text not in ("FULL", "HDRS"):
        raise CommandError(INVALID_PARAMETER_501)
    return text


def _parse_envid(value: str | None, enabled: frozenset[str]) -> str:
    text = _require(value)
    if len(text) > MAX_ENVID_LENGTH:
        raise CommandError(INVALID_PARAMETER_501)
    return decode_xtext(text)


def _parse_notify(value: str | None, enabled: frozenset[str]) -> frozenset[NotifyCondition]:
    # RFC 3461 §4.1: NEVER alone, or a comma list of SUCCESS, FAILURE, DELAY.
    items = _require(value).upper().split(",")
    if items == ["NEVER"]:
        return frozenset()
    allowed: dict[str, NotifyCondition] = {"SUCCESS": "SUCCESS", "FAILURE": "FAILURE", "DELAY": "DELAY"}
    if any(item not in allowed for item in items) or len(set(items)) != len(items):
        raise CommandError(INVALID_PARAMETER_501)
    return frozenset(allowed[item] for item in items)


def _parse_orcpt(value: str | None, enabled: frozenset[str]) -> OriginalRecipient:
    # RFC 3461 §4.2: ORCPT=addr-type ";" xtext
    text = _require(value)
    address_type, separator, address = text.partition(";")
    if not separator or not address or len(text) > MAX_ORCPT_LENGTH:
        raise CommandError(INVALID_PARAMETER_501)
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+", address_type) is None:
        raise CommandError(INVALID_PARAMETER_501)
    return OriginalRecipient(address_type=address_type.lower(), address=decode_xtext(address))


_MAIL_PARAMS: dict[str, _ParamSpec] = {
    "SIZE": _ParamSpec(field="size", extension="SIZE", parse=_parse_size),
    "BODY": _ParamSpec(field="body", extension="8BITMIME", parse=_parse_body),
    "SMTPUTF8": _ParamSpec(field="smtputf8", extension="SMTPUTF8", parse=_parse_flag),
    "REQUIRETLS": _ParamSpec(field="requiretls", extension="REQUIRETLS", parse=_parse_flag),
    "AUTH": _ParamSpec(field="auth", extension="AUTH", parse=_parse_auth_param),
    "RET": _ParamSpec(field="ret", extension="DSN", parse=_parse_ret),
    "ENVID": _ParamSpec(field="envid", extension="DSN", parse=_parse_envid),
}
_RCPT_PARAMS: dict[str, _ParamSpec] = {
    "NOTIFY": _ParamSpec(field="notify", extension="DSN", parse=_parse_notify),
    "ORCPT": _ParamSpec(field="orcpt", extension="DSN", parse=_parse_orcpt),
}
