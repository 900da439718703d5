"""Server-to-client data encoding (RFC 9051 §4 and §9): atoms, strings, literals, lists, dates, sets,
and the ENVELOPE and BODY/BODYSTRUCTURE renderings of a parsed message.

Theory of operation: every function returns the finished wire bytes of one grammar element, so responses are
built by joining pieces. Strings arrive as `str` decoded with surrogateescape (message header values) or as
`bytes`; `str` is encoded back with surrogateescape so the octets that arrived are the octets that go out.

`encode_string` picks the form: a quoted string when the grammar allows it, a literal otherwise. Quoted strings
may not hold CR, LF or NUL, and hold 8-bit octets only as valid UTF-8 once the client enabled UTF8=ACCEPT or
IMAP4rev2 (RFC 6855 §3, RFC 9051 §4.3).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from kittiwake.mail.envelope import Envelope, EnvelopeAddress
from kittiwake.mail.structure import BodyPart, MessageStructure
from kittiwake.proto.imap.mailbox_names import encode_modified_utf7

NIL = b"NIL"
# Above this many octets a string goes out as a literal: clients read literals without scanning for escapes.
QUOTED_MAX_OCTETS = 1024

# RFC 9051 §9: atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards / quoted-specials / resp-specials.
_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f-\xff%*\"\\\]]+\Z")
# RFC 9051 §9: ASTRING-CHAR = ATOM-CHAR / resp-specials ("]").
_ASTRING_ATOM = re.compile(rb"[^(){ \x00-\x1f\x7f-\xff%*\"\\]+\Z")
_NOT_QUOTABLE = re.compile(rb"[\x00\r\n]")
_EIGHT_BIT = re.compile(rb"[\x80-\xff]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_bytes(value: str | bytes) -> bytes:
    """The octets of a header-derived value: `str` is encoded back with surrogateescape."""
    if isinstance(value, bytes):
        return value
    return value.encode("utf-8", "surrogateescape")


def encode_atom(value: str | bytes) -> bytes:
    """An atom as is; raises ValueError when `value` has a character atoms may not contain."""
    data = to_bytes(value)
    if not _ATOM.match(data):
        raise ValueError(f"not an IMAP atom: {data!r}")
    return data


def encode_number(value: int) -> bytes:
    """A number (RFC 9051 §9 `number`/`number64`); raises ValueError for negatives."""
    if value < 0:
        raise ValueError(f"IMAP numbers are unsigned: {value}")
    return b"%d" % value


def encode_quoted(value: str | bytes) -> bytes:
    """A quoted string with `\\` and `"` escaped; raises ValueError for CR, LF or NUL."""
    data = to_bytes(value)
    if _NOT_QUOTABLE.search(data):
        raise ValueError("CR, LF and NUL cannot be sent in a quoted string")
    return _quote(data)


def _quote(data: bytes) -> bytes:
    # RFC 9051 §9: quoted-specials are escaped with a backslash.
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def replace_nul(data: bytes) -> bytes:
    """`data` with every NUL octet turned into 0x80, the length unchanged, as Dovecot sends it.

    RFC 3501 §4.3.1, RFC 9051 §4.3.1: a string holding NUL is a binary string, which only a literal8
    answering BINARY[...] may carry (RFC 9051 §9: a literal is made of CHAR8, which excludes NUL).
    """
    return data.replace(b"\x00", b"\x80")


def encode_literal(value: str | bytes) -> bytes:
    """A synchronising-form literal `{n}CRLF` followed by the octets, NUL replaced (see `replace_nul`)."""
    data = replace_nul(to_bytes(value))
    return b"{%d}\r\n" % len(data) + data


def encode_literal8(value: bytes) -> bytes:
    """A literal8 `~{n}CRLF` (RFC 3516 §4.2, RFC 9051 §9): binary content for BINARY[...] data."""
    return b"~{%d}\r\n" % len(value) + value


def can_quote(data: bytes, *, utf8: bool = False) -> bool:
    """Whether `data` may go out as a quoted string (see the module docstring)."""
    if len(data) > QUOTED_MAX_OCTETS or _NOT_QUOTABLE.search(data):
        return False
    if not _EIGHT_BIT.search(data):
        return True
    if not utf8:
        return False
    # RFC 6855 §3: quoted strings may carry UTF-8, but only valid UTF-8; raw 8-bit goes in a literal.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def encode_string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """A `string`: quoted when allowed, else a literal. `utf8` is true once UTF8=ACCEPT/IMAP4rev2 is on."""
    data = to_bytes(value)
    if can_quote(data, utf8=utf8):
        return _quote(data)
    return encode_literal(data)


def encode_nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    """An `nstring`: NIL for None, else `encode_string`."""
    if value is None:
        return NIL
    return encode_string(value, utf8=utf8)


def encode_astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """An `astring`: a bare atom when every character allows it, else a string.

    A value spelled NIL is quoted, so no client mistakes a mailbox named "NIL" for the nil value.
    """
    data = to_bytes(value)
    if data and _ASTRING_ATOM.match(data) and data.upper() != NIL:
        return data
    return encode_string(data, utf8=utf8)


def encode_list(items: Iterable[bytes]) -> bytes:
    """A parenthesised list of already encoded items separated by single spaces."""
    return b"(" + b" ".join(items) + b")"


def encode_flag_list(flags: Iterable[str]) -> bytes:
    """A `flag-list` such as `(\\Seen $Forwarded)`; each flag must be an atom (system flags keep their `\\`)."""
    return b"(" + b" ".join(_encode_flag(flag) for flag in flags) + b")"


def _encode_flag(flag: str) -> bytes:
    # RFC 9051 §9: flag-extension = "\" atom; "\*" appears in PERMANENTFLAGS only.
    if flag == "\\*":
        return b"\\*"
    if flag.startswith("\\"):
        return b"\\" + encode_atom(flag[1:])
    return encode_atom(flag)


def encode_mailbox_name(name: str, utf8: bool) -> bytes:
    """A `mailbox` on the wire: modified UTF-7 for IMAP4rev1 clients, UTF-8 with `utf8` (RFC 6855 §3)."""
    return encode_astring(mailbox_name_octets(name, utf8), utf8=utf8)


def mailbox_name_octets(name: str, utf8: bool) -> bytes:
    """The unquoted octets of a mailbox name: UTF-8 with `utf8`, else modified UTF-7 (RFC 3501 §5.1.3)."""
    return name.encode("utf-8") if utf8 else encode_modified_utf7(name)


def encode_date_time(moment: datetime) -> bytes:
    """An IMAP `date-time`: `"22-Nov-2026 04:30:00 +0000"` in the offset `moment` carries.

    `moment` must be timezone-aware; INTERNALDATE keeps the offset the message arrived with.
    """
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("date-time needs a timezone-aware datetime")
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    text = (
        f'"{moment.day:02d}-{_MONTHS[moment.month - 1]}-{moment.year:04d} '
        f'{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {sign}{hours:02d}{minutes:02d}"'
    )
    return text.encode("ascii")


def render_uid_set(numbers: Iterable[int]) -> bytes:
    """A compact `sequence-set` such as `1:5,7,9:12` for sorted or unsorted numbers; duplicates collapse.

    Used for ESEARCH ALL, VANISHED, COPYUID and APPENDUID. Raises ValueError for an empty input, which has
    no sequence-set form (callers omit the item instead).
    """
    ordered = sorted(set(numbers))
    if not ordered:
        raise ValueError("an empty set has no sequence-set form")
    ranges: list[bytes] = []
    start = previous = ordered[0]
    for number in ordered[1:]:
        if number != previous + 1:
            ranges.append(_range(start, previous))
            start = number
        previous = number
    ranges.append(_range(start, previous))
    return b",".join(ranges)


def _range(start: int, end: int) -> bytes:
    return b"%d" % start if start == end else b"%d:%d" % (start, end)


def render_envelope(envelope: Envelope, *, utf8: bool = False) -> bytes:
    """ENVELOPE data (RFC 9051 §7.5.2, §9 `envelope`): ten fields, NIL for absent ones.

    RFC 9051 §7.5.2: an absent or empty Sender or Reply-To is sent as a copy of From.
    """
    sender = envelope.sender or envelope.from_
    reply_to = envelope.reply_to or envelope.from_
    fields = (
        encode_nstring(envelope.date, utf8=utf8),
        encode_nstring(envelope.subject, utf8=utf8),
        _render_addresses(envelope.from_, utf8),
        _render_addresses(sender, utf8),
        _render_addresses(reply_to, utf8),
        _render_addresses(envelope.to, utf8),
        _render_addresses(envelope.cc, utf8),
        _render_addresses(envelope.bcc, utf8),
        encode_nstring(envelope.in_reply_to, utf8=utf8),
        encode_nstring(envelope.message_id, utf8=utf8),
    )
    return b"(" + b" ".join(fields) + b")"


def _render_addresses(addresses: tuple[EnvelopeAddress, ...], utf8: bool) -> bytes:
    # RFC 9051 §9: env-from etc. = "(" 1*address ")" / NIL; addresses follow each other without spaces.
    if not addresses:
        return NIL
    return b"(" + b"".join(_render_address(address, utf8) for address in addresses) + b")"


def _render_address(address: EnvelopeAddress, utf8: bool) -> bytes:
    return (
        b"("
        + encode_nstring(address.name, utf8=utf8)
        + b" "
        + encode_nstring(address.adl, utf8=utf8)
        + b" "
        + encode_nstring(address.mailbox, utf8=utf8)
        + b" "
        + encode_nstring(address.host, utf8=utf8)
        + b")"
    )


def render_body_structure(
    structure: MessageStructure | BodyPart, *, extensible: bool, utf8: bool = False
) -> bytes:
    """BODYSTRUCTURE (`extensible`) or BODY (not) data of a message or of one part (RFC 9051 §7.5.2).

    BODYSTRUCTURE adds the extension fields: MD5, disposition, language and location for single parts;
    parameters, disposition, language and location for multiparts. BODY leaves all of them out.
    """
    part = structure.root if isinstance(structure, MessageStructure) else structure
    pieces: list[bytes] = []
    _BodyRenderer(pieces, extensible=extensible, utf8=utf8).render(part)
    return b"".join(pieces)


# RFC 9051 §9: body-type-mpart = 1*body SP media-subtype; an empty multipart still needs one body, so an
# empty text/plain stands in for the missing children (as Dovecot does).
_EMPTY_TEXT_PART = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_TEXT_PART_EXTENDED = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


class _BodyRenderer:
    """Appends the rendering of a part tree to `pieces`; iterates over children, recursing per nesting level."""

    def __init__(self, pieces: list[bytes], *, extensible: bool, utf8: bool) -> None:
        self._out = pieces
        self._extensible = extensible
        self._utf8 = utf8

    def render(self, part: BodyPart) -> None:
        if part.is_multipart:
            self._render_multipart(part)
        else:
            self._render_single(part)

    def _string(self, value: str | None) -> bytes:
        return encode_nstring(value, utf8=self._utf8)

    def _render_multipart(self, part: BodyPart) -> None:
        out = self._out
        out.append(b"(")
        for child in part.children:
            self.render(child)
        if not part.children:
            out.append(_EMPTY_TEXT_PART_EXTENDED if self._extensible else _EMPTY_TEXT_PART)
        out.append(b" " + encode_string(part.media_subtype, utf8=self._utf8))
        if self._extensible:
            # RFC 9051 §9: body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
            out.append(b" " + self._params(part.params) + b" " + self._trailing_extension(part))
        out.append(b")")

    def _render_single(self, part: BodyPart) -> None:
        out = self._out
        # RFC 9051 §9: body-type-1part basic fields: type, subtype, params, id, description, encoding, octets.
        out.append(
            b"("
            + encode_string(part.media_type, utf8=self._utf8)
            + b" "
            + encode_string(part.media_subtype, utf8=self._utf8)
            + b" "
            + self._params(part.params)
            + b" "
            + self._string(part.content_id)
            + b" "
            + self._string(part.description)
            + b" "
            + encode_string(part.encoding.lower(), utf8=self._utf8)
            + b" "
            + encode_number(part.body_size)
        )
        if part.message is not None:
            # RFC 9051 §9 body-type-msg: envelope, the encapsulated body, then body-fld-lines.
            out.append(b" " + render_envelope(part.message.envelope, utf8=self._utf8) + b" ")
            self.render(part.message.root)
            out.append(b" " + encode_number(part.body_lines))
        elif part.media_type == "text":
            # RFC 9051 §9 body-type-text: text parts carry their line count.
            out.append(b" " + encode_number(part.body_lines))
        if self._extensible:
            # RFC 9051 §9: body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]
            out.append(b" " + self._string(part.md5) + b" " + self._trailing_extension(part))
        out.append(b")")

    def _trailing_extension(self, part: BodyPart) -> bytes:
        return (
            self._disposition(part)
            + b" "
            + self._language(part.language)
            + b" "
            + self._string(part.location)
        )

    def _params(self, params: tuple[tuple[str, str], ...]) -> bytes:
        # RFC 9051 §9: body-fld-param = "(" string SP string *(SP string SP string) ")" / NIL
        if not params:
            return NIL
        return encode_list(
            encode_string(name, utf8=self._utf8) + b" " + encode_string(value, utf8=self._utf8)
            for name, value in params
        )

    def _disposition(self, part: BodyPart) -> bytes:
        # RFC 9051 §9: body-fld-dsp = "(" string SP body-fld-param ")" / NIL
        if part.disposition is None:
            return NIL
        return (
            b"("
            + encode_string(part.disposition, utf8=self._utf8)
            + b" "
            + self._params(part.disposition_params)
            + b")"
        )

    def _language(self, languages: tuple[str, ...]) -> bytes:
        # RFC 9051 §9: body-fld-lang = nstring / "(" string *(SP string) ")"; always the list form, as Dovecot.
        if not languages:
            return NIL
        return encode_list(encode_string(language, utf8=self._utf8) for language in languages)
