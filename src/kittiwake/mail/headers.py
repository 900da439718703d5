"""Header fields: splitting and unfolding a header block (RFC 5322 §2.2), MIME parameters with RFC 2231
continuations (Content-Type, Content-Disposition), and the trace fields a receiving server prepends
(Received: per RFC 5321 §4.4, Return-Path:)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from datetime import datetime

from kittiwake.mail.dates import format_rfc5322_date
from kittiwake.mail.encoded_words import decode_charset

HeaderField = tuple[str, str]
Parameters = tuple[tuple[str, str], ...]

# RFC 5322 §3.6.8: field-name = 1*ftext, printable US-ASCII except ":".
_FIELD_NAME = re.compile(r"[!-9;-~]+")
_SKIP_WHITESPACE = re.compile(r"[ \t\r\n]*")
# RFC 2045 §5.1: token = 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>.
_TOKEN = re.compile(r'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]+')
_ATTRIBUTE = re.compile(r'[^\x00-\x20=;()"]+')
# Unquoted values are read leniently: real mail has "=", "/", "?" and even spaces in them
# (boundary=----=_Part_1, filename=annual report.pdf); a comment still ends them.
_LOOSE_VALUE = re.compile(r'[^\x00-\x08\x0a-\x1f;()"]*')
_QUOTED_BODY = re.compile(r'(?:[^"\\]|\\.)*', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
# RFC 2231 §3-4: name*, name*0, name*1* ...
_EXTENDED_NAME = re.compile(r"(?P<base>[^*]+)\*(?P<number>\d{1,3})?(?P<encoded>\*)?")
_RECEIVED_UNSAFE = re.compile(r"[\x00-\x20()\\\x7f]+")
_FOLD_WIDTH = 78


def parse_header_fields(block: bytes | bytearray | memoryview) -> list[HeaderField]:
    """Split a header block into (name, value) fields, unfolded (RFC 5322 §2.2.3), values stripped.

    Text is decoded as UTF-8 with surrogateescape, so no byte is lost. The block ends at the first empty line;
    lines that are neither a field nor a continuation are dropped, along with their continuations.
    """
    text = bytes(block).decode("utf-8", "surrogateescape")
    fields: list[list[str]] = []
    current: list[str] | None = None
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line:
            break
        if line[0] in " \t":
            # RFC 5322 §2.2.3: unfolding removes the CRLF; the whitespace that follows it stays.
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")  # RFC 5322 §4.5.1: obs-optional allows WSP before the colon
        if not colon or not _FIELD_NAME.fullmatch(name):
            current = None
            continue
        current = [name, value]
        fields.append(current)
    return [(parts[0], "".join(parts[1:]).strip(" \t\r\n")) for parts in fields]


def first_field(fields: Iterable[HeaderField], name: str) -> str | None:
    """The value of the first field called `name` (case-insensitive), or None."""
    wanted = name.lower()
    for field_name, value in fields:
        if field_name.lower() == wanted:
            return value
    return None


def field_values(fields: Iterable[HeaderField], name: str) -> list[str]:
    """The values of every field called `name` (case-insensitive), in order, as written."""
    wanted = name.lower()
    return [value for field_name, value in fields if field_name.lower() == wanted]


def skip_cfws(text: str, position: int) -> int:
    """The index after any whitespace and (nested) comments at `position` (RFC 5322 §3.2.2 CFWS)."""
    length = len(text)
    while True:
        position = _SKIP_WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
        if position >= length or text[position] != "(":
            return position
        position = skip_comment(text, position)


def skip_comment(text: str, position: int) -> int:
    """The index after the comment opening at `position`; the end of text for an unclosed one."""
    depth = 0
    length = len(text)
    while position < length:
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return length


def read_quoted_string(text: str, position: int) -> tuple[str, int]:
    """Read the quoted string whose DQUOTE is at `position`: (content without quoting, index after it)."""
    match = _QUOTED_BODY.match(text, position + 1)
    assert match is not None  # the pattern matches the empty string
    end = match.end()
    if end < len(text):
        end += 1  # the closing DQUOTE; an unclosed string runs to the end
    return _QUOTED_PAIR.sub(r"\1", match[0]), end


def parse_content_type(value: str) -> tuple[str, str, Parameters] | None:
    """Parse a Content-Type value into (type, subtype, parameters), lower-case names; None if unreadable.

    RFC 2045 §5.2: the caller applies the default (text/plain; charset=us-ascii) when this returns None.
    """
    position = skip_cfws(value, 0)
    media_type = _TOKEN.match(value, position)
    if media_type is None:
        return None
    position = skip_cfws(value, media_type.end())
    if value[position : position + 1] != "/":
        return None
    subtype = _TOKEN.match(value, skip_cfws(value, position + 1))
    if subtype is None:
        return None
    return media_type[0].lower(), subtype[0].lower(), parse_parameters(value, subtype.end())


def parse_content_disposition(value: str) -> tuple[str | None, Parameters]:
    """Parse a Content-Disposition value (RFC 2183) into (lower-case type or None, parameters)."""
    position = skip_cfws(value, 0)
    disposition = _TOKEN.match(value, position)
    if disposition is None:
        return None, parse_parameters(value, position)
    return disposition[0].lower(), parse_parameters(value, disposition.end())


def parse_parameters(value: str, position: int = 0) -> Parameters:
    """Parse `; name=value` parameters from `position` (RFC 2045 §5.1), joining RFC 2231 continuations.

    Names are lower case; values are unquoted and, for RFC 2231 extended values, decoded from their charset.
    Junk between parameters is skipped; the first of duplicate names wins.
    """
    raw: list[tuple[str, str]] = []
    length = len(value)
    while True:
        position = skip_cfws(value, position)
        if position >= length:
            break
        if value[position] != ";":
            position = value.find(";", position)
            if position < 0:
                break
        position = skip_cfws(value, position + 1)
        attribute = _ATTRIBUTE.match(value, position)
        if attribute is None:
            continue
        position = skip_cfws(value, attribute.end())
        if value[position : position + 1] != "=":
            continue
        position = skip_cfws(value, position + 1)
        if value[position : position + 1] == '"':
            text, position = read_quoted_string(value, position)
        else:
            loose = _LOOSE_VALUE.match(value, position)
            assert loose is not None  # the pattern matches the empty string
            text, position = loose[0].rstrip(" \t"), loose.end()
        raw.append((attribute[0].lower(), text))
    return _join_extended(raw)


def _join_extended(raw: list[tuple[str, str]]) -> Parameters:
    order: list[str] = []
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, text in raw:
        match = _EXTENDED_NAME.fullmatch(name)
        base = match["base"] if match else name
        if base not in plain and base not in extended:
            order.append(base)
        if match is None:
            plain.setdefault(name, text)
            continue
        number = int(match["number"]) if match["number"] is not None else 0
        # RFC 2231 §4: "name*" is one encoded value; "name*N*" an encoded segment, "name*N" a plain one.
        encoded = match["number"] is None or match["encoded"] is not None
        extended.setdefault(base, {}).setdefault(number, (text, encoded))
    return tuple(
        (base, _decode_extended(extended[base]) if base in extended else plain[base]) for base in order
    )


def _decode_extended(segments: dict[int, tuple[str, bool]]) -> str:
    charset: str | None = None
    pieces: list[bytes] = []
    for index, number in enumerate(sorted(segments)):
        text, encoded = segments[number]
        if encoded and index == 0 and text.count("'") >= 2:
            # RFC 2231 §4: the first segment carries charset'language'.
            charset, _language, text = text.split("'", 2)
        data = text.encode("utf-8", "surrogateescape")
        pieces.append(urllib.parse.unquote_to_bytes(data) if encoded else data)
    joined = b"".join(pieces)
    decoded = decode_charset(joined, charset)
    return decoded if decoded is not None else joined.decode("utf-8", "surrogateescape")


def received_protocol(*, extended: bool, tls: bool, authenticated: bool, smtputf8: bool = False) -> str:
    """The `with` protocol of a Received: field: RFC 3848 (ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 §3.7.3."""
    if not extended:
        return "SMTP"
    base = "UTF8SMTP" if smtputf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def _received_safe(text: str) -> str:
    # The values come from the peer (HELO) or the network; nothing may break the field's syntax.
    return _RECEIVED_UNSAFE.sub("_", text) or "_"


def _address_literal(ip: str) -> str:
    # RFC 5321 §4.1.3: IPv6 address literals carry the "IPv6:" tag.
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def build_received(
    *,
    helo: str | None,
    reverse_dns: str | None,
    ip: str,
    by_host: str,
    protocol: str,
    now: datetime,
    queue_id: str | None = None,
    recipient: str | None = None,
    tls_version: str | None = None,
    tls_cipher: str | None = None,
) -> bytes:
    """Build a Received: field (RFC 5321 §4.4), folded at 78 columns where clauses allow, ending in CRLF.

    `from` carries the HELO name with the reverse DNS name and IP as TCP-info; `protocol` comes from
    `received_protocol`; the TLS version and cipher go in a comment before the date.
    """
    literal = _address_literal(_received_safe(ip))
    tcp_info = f"({_received_safe(reverse_dns)} {literal})" if reverse_dns else f"({literal})"
    clauses = [f"from {_received_safe(helo)}" if helo else f"from {literal}", tcp_info]
    clauses += [f"by {_received_safe(by_host)}", f"with {_received_safe(protocol)}"]
    if queue_id:
        clauses.append(f"id {_received_safe(queue_id)}")
    if recipient:
        clauses.append(f"for <{_received_safe(recipient)}>")
    if tls_version or tls_cipher:
        words = [_received_safe(tls_version or "TLS"), "with cipher", _received_safe(tls_cipher or "unknown")]
        clauses.append(f"(using {' '.join(words)})")
    clauses[-1] += ";"
    clauses.append(format_rfc5322_date(now))
    return _fold("Received:", clauses)


def _fold(name: str, clauses: list[str]) -> bytes:
    lines = [name]
    for clause in clauses:
        if len(lines[-1]) + 1 + len(clause) > _FOLD_WIDTH and lines[-1] != name:
            lines.append("\t" + clause)
        else:
            lines[-1] += " " + clause
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n"


def build_return_path(reverse_path: str) -> bytes:
    """Build the Return-Path: field (RFC 5321 §4.4) for a reverse-path; "" gives the null path `<>`."""
    path = reverse_path.strip()
    if path.startswith("<") and path.endswith(">"):
        path = path[1:-1]
    path = re.sub(r"[\x00-\x1f\x7f<>]", "", path)
    return b"Return-Path: <" + path.encode("utf-8", "surrogateescape") + b">\r\n"
