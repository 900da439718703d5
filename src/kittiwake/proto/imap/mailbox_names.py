"""Mailbox names: modified UTF-7 (IMAP4rev1) and UTF-8 (IMAP4rev2) on the wire, `str` inside the server.

This module is the one place where mailbox names are decoded. Names are stored and compared as `str` with the
hierarchy delimiter "/" and with INBOX spelled in upper case.
"""

from __future__ import annotations

import base64
import re

from kittiwake.proto.imap.errors import MailboxNameError

DELIMITER = "/"
INBOX = "INBOX"
MAX_NAME_OCTETS = 1000

# RFC 3501 §5.1.3: "&" starts a base64 run of UTF-16BE, "-" ends it, "," replaces "/", no padding.
_SHIFTED_RUN = re.compile(rb"&([A-Za-z0-9+,]*)-")
_PRINTABLE_ASCII = re.compile(rb"[\x20-\x7e]*\Z")
_DIRECT_CHARS = re.compile(r"[\x20-\x25\x27-\x7e]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WILDCARDS = re.compile(r"[*%]")


def decode_mailbox_name(raw: bytes, *, utf8: bool = False) -> str:
    """Decode a mailbox name (or LIST pattern) as sent by the client.

    With `utf8` (IMAP4rev2 or UTF8=ACCEPT enabled, RFC 6855 §3) the bytes are strict UTF-8; otherwise they
    are strict modified UTF-7. Raises `MailboxNameError` for anything an encoder would not produce.
    """
    if utf8:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MailboxNameError("mailbox name is not valid UTF-8") from None
        # RFC 6855 §3: UTF-8 mailbox names follow Net-Unicode (RFC 5198), which has no control characters.
        if _CONTROL_CHARS.search(name):
            raise MailboxNameError("control character in mailbox name")
        return name
    return decode_modified_utf7(raw)


def decode_modified_utf7(raw: bytes) -> str:
    """Strictly decode modified UTF-7 (RFC 3501 §5.1.3); raises `MailboxNameError`."""
    if not _PRINTABLE_ASCII.match(raw):
        raise MailboxNameError("mailbox name has 8-bit or control characters")
    if b"&" not in raw:
        return raw.decode("ascii")
    out: list[str] = []
    position = 0
    previous_run_end = -1
    for match in _SHIFTED_RUN.finditer(raw):
        direct = raw[position : match.start()]
        if b"&" in direct:
            raise MailboxNameError("unterminated '&' run in mailbox name")
        out.append(direct.decode("ascii"))
        run = match.group(1)
        if not run:
            out.append("&")
        else:
            # RFC 3501 §5.1.3: adjacent shifted runs are not allowed; one run covers them.
            if match.start() == previous_run_end:
                raise MailboxNameError("adjacent modified base64 runs in mailbox name")
            out.append(_decode_run(run))
            previous_run_end = match.end()
        position = match.end()
    tail = raw[position:]
    if b"&" in tail:
        raise MailboxNameError("unterminated '&' run in mailbox name")
    out.append(tail.decode("ascii"))
    return "".join(out)


def _decode_run(run: bytes) -> str:
    standard = run.replace(b",", b"/")
    try:
        utf16 = base64.b64decode(standard + b"=" * (-len(standard) % 4), validate=True)
    except ValueError:
        raise MailboxNameError("bad modified base64 in mailbox name") from None
    # Canonical form only: non-zero padding bits or a stray trailing sextet would not round-trip.
    if base64.b64encode(utf16).rstrip(b"=") != standard or len(utf16) % 2:
        raise MailboxNameError("non-canonical modified base64 in mailbox name")
    try:
        text = utf16.decode("utf-16-be")
    except UnicodeDecodeError:
        raise MailboxNameError("bad UTF-16 in mailbox name") from None
    # RFC 3501 §5.1.3: printable US-ASCII characters represent themselves and are never base64-encoded.
    if any(0x20 <= ord(char) <= 0x7E for char in text):
        raise MailboxNameError("printable ASCII encoded in modified base64")
    return text


def encode_mailbox_name(name: str, *, utf8: bool = False) -> bytes:
    """Encode a mailbox name for the wire: UTF-8 when `utf8`, else modified UTF-7."""
    if utf8:
        return name.encode("utf-8")
    return encode_modified_utf7(name)


def encode_modified_utf7(name: str) -> bytes:
    """Encode to modified UTF-7 (RFC 3501 §5.1.3)."""
    out: list[bytes] = []
    position = 0
    for match in _DIRECT_CHARS.finditer(name):
        if match.start() > position:
            out.append(_encode_run(name[position : match.start()]))
        out.append(match.group().encode("ascii"))
        position = match.end()
    if position < len(name):
        out.append(_encode_run(name[position:]))
    return b"".join(out)


def _encode_run(text: str) -> bytes:
    if text == "&" * len(text):
        return b"&-" * len(text)
    pieces: list[bytes] = []
    pending: list[str] = []
    for char in text:
        if char == "&":
            if pending:
                pieces.append(_base64_run("".join(pending)))
                pending = []
            pieces.append(b"&-")
        else:
            pending.append(char)
    if pending:
        pieces.append(_base64_run("".join(pending)))
    return b"".join(pieces)


def _base64_run(text: str) -> bytes:
    encoded = base64.b64encode(text.encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
    return b"&" + encoded + b"-"


def normalize_inbox(name: str) -> str:
    """Spell INBOX in upper case, alone or as the first hierarchy level (RFC 9051 §5.1: case-insensitive)."""
    head, delimiter, rest = name.partition(DELIMITER)
    if head.upper() == INBOX and head != INBOX:
        return INBOX + delimiter + rest
    return name


def check_mailbox_name(name: str, *, creating: bool = False) -> None:
    """Raise `MailboxNameError` unless `name` is a name the server can hold.

    Refused: empty names or components, "." and ".." components, a leading delimiter, control characters,
    more than 1000 octets, and (when `creating`) the LIST wildcards "*" and "%" (RFC 9051 §5.1).
    """
    if not name:
        raise MailboxNameError("empty mailbox name")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_OCTETS:
        raise MailboxNameError("mailbox name too long")
    if _CONTROL_CHARS.search(name):
        raise MailboxNameError("control character in mailbox name")
    if name.startswith(DELIMITER):
        raise MailboxNameError("mailbox name starts with the hierarchy delimiter")
    for component in name.split(DELIMITER):
        if component in ("", ".", ".."):
            raise MailboxNameError("empty, '.' or '..' component in mailbox name")
    if creating and _WILDCARDS.search(name):
        raise MailboxNameError("'*' and '%' are not allowed in mailbox names")
