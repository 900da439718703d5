"""The Authentication-Results header field (RFC 8601): building ours, and finding ones that claim to be ours.

A receiving server records what it checked as one field, `Authentication-Results: <authserv-id>; <method
results>`. RFC 8601 §5 requires a border server to remove fields that carry its own authserv-id before
adding its own, since anyone could have written them. Stored messages in kittiwake are never rewritten
(the trace fields a server adds are a prefix to the bytes received), so two helpers are offered:
`find_forged_results` gives the byte ranges of such fields so a caller can decide what to do about them
(reject, keep a note of them, or copy the message without them), and `remove_our_results` returns a copy
without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kittiwake.mail.headers import read_quoted_string, skip_cfws

_FOLD_WIDTH = 78
_FIELD_NAME = "Authentication-Results:"
# RFC 2045 §5.1 token: no SPACE, CTLs or tspecials.
_TOKEN = re.compile(r'[^\x00-\x20()<>@,;:\\"/\[\]?=\x7f]+')
# RFC 8601 §2.2 pvalue may be [local-part] "@" domain-name: dot-atom local parts, as SMTP addresses have.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_LABEL_TEXT = r"[A-Za-z0-9.\-\u0080-\U0010ffff]"
_MAILBOX = re.compile(rf"(?:{_ATEXT}+(?:\.{_ATEXT}+)*)?@{_LABEL_TEXT}+")
_COMMENT_UNSAFE = re.compile(r"[\x00-\x1f\x7f()\\]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_QUOTED_SPECIALS = re.compile(r'(["\\])')
_AUTHSERV_ID_END = re.compile(r"[ \t\r\n;(]")


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodResult:
    """One resinfo (RFC 8601 §2.2): `method=result (comment) ptype.property=value ...`."""

    method: str
    result: str
    comment: str | None = None
    properties: tuple[tuple[str, str], ...] = ()


def spf_result(result: str, mail_from: str, *, helo: bool = False) -> MethodResult:
    """RFC 8601 §2.7.2: smtp.mailfrom, or smtp.helo when the HELO identity was the one checked."""
    return MethodResult(
        method="spf", result=result, properties=(("smtp.helo" if helo else "smtp.mailfrom", mail_from),)
    )


def dkim_result(result: str, *, domain: str, selector: str, signature_prefix: str) -> MethodResult:
    """RFC 8601 §2.7.1, RFC 6008: header.d, header.s and the start of b= tell the signatures apart."""
    properties = (("header.d", domain), ("header.s", selector), ("header.b", signature_prefix[:8]))
    return MethodResult(method="dkim", result=result, properties=tuple((p, v) for p, v in properties if v))


def dmarc_result(
    result: str, *, header_from: str, policy: str | None = None, disposition: str | None = None
) -> MethodResult:
    """RFC 7489 §11.2: header.from is the author domain; the comment says the policy and what was done."""
    notes = [f"p={policy}"] if policy else []
    if disposition:
        notes.append(f"dis={disposition}")
    properties = (("header.from", header_from),) if header_from else ()
    return MethodResult(method="dmarc", result=result, comment=" ".join(notes) or None, properties=properties)


def arc_result(result: str, *, oldest_pass: int | None = None, remote_ip: str | None = None) -> MethodResult:
    """RFC 8617 §10.2: smtp.remote-ip and header.oldest-pass."""
    properties: list[tuple[str, str]] = []
    if remote_ip:
        properties.append(("smtp.remote-ip", remote_ip))
    if oldest_pass is not None:
        properties.append(("header.oldest-pass", str(oldest_pass)))
    return MethodResult(method="arc", result=result, properties=tuple(properties))


def build_authentication_results(authserv_id: str, results: Sequence[MethodResult]) -> bytes:
    """The whole `Authentication-Results:` field, folded under 78 columns, ending in CRLF.

    Each method result starts a line of its own. With no results the field says `none` (RFC 8601 §2.2).
    """
    line = f"{_FIELD_NAME} {_value(authserv_id)}"
    if not results:
        return f"{line}; none\r\n".encode("utf-8", "surrogateescape")
    lines: list[str] = []
    for result in results:
        lines.append(line + ";")
        line = f"\t{result.method}={result.result}"
        words = [f"{name}={_value(value)}" for name, value in result.properties]
        if result.comment:
            words.insert(0, "(" + " ".join(_COMMENT_UNSAFE.sub(" ", result.comment).split()) + ")")
        for word in words:
            if len(line) + 1 + len(word) > _FOLD_WIDTH:
                lines.append(line)
                line = "\t" + word
            else:
                line += " " + word
    lines.append(line)
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n"


def _value(text: str) -> str:
    """A token or an address as it is, anything else as a quoted-string (RFC 8601 §2.2 pvalue)."""
    if _TOKEN.fullmatch(text) or _MAILBOX.fullmatch(text):
        return text
    escaped = _QUOTED_SPECIALS.sub(r"\\\1", _CONTROLS.sub("", text))
    return f'"{escaped}"'


def find_forged_results(header_block: bytes, authserv_id: str) -> list[tuple[int, int]]:
    """Byte ranges [start, end) of the Authentication-Results fields claiming `authserv_id`.

    RFC 8601 §5: the comparison ignores case. Each range covers the whole field, continuation lines and
    line ending included. Scanning stops at the empty line that ends the header, so a whole message may be
    passed.
    """
    # Most messages carry no Authentication-Results field at all: a look at the raw header for a line
    # starting with the name, in any case, is enough to tell, without reading the fields one by one.
    if not has_field(header_block, b"authentication-results"):
        return []
    ours = authserv_id.casefold()
    return [
        (start, end)
        for name, start, end in _field_ranges(header_block)
        if name == b"authentication-results" and _authserv_id(header_block[start:end]) == ours
    ]


def remove_our_results(header_block: bytes, authserv_id: str) -> bytes:
    """`header_block` without the Authentication-Results fields claiming `authserv_id` (RFC 8601 §5).

    Other fields, and whatever follows the header, are kept byte for byte.
    """
    pieces: list[bytes] = []
    position = 0
    for start, end in find_forged_results(header_block, authserv_id):
        pieces.append(header_block[position:start])
        position = end
    pieces.append(header_block[position:])
    return b"".join(pieces)


def has_field(message: bytes, prefix: bytes) -> bool:
    """Whether a line of the header of `message` starts with `prefix` (lower case), in any case.

    False means no field whose name starts with `prefix` is there. True may also come from a line that is
    not such a field (a continuation never matches: it starts with white space). The header is split
    at LF and ends at the first empty line, as parse_header_fields and _field_ranges read it.
    """
    header = message[: header_length(message)].lower()
    return header.startswith(prefix) or b"\n" + prefix in header


def header_length(message: bytes) -> int:
    """The length of the header of `message`: up to and including the LF before the first empty line
    (RFC 5322 §2.1), with either line ending; all of `message` when it has no empty line."""
    if message.startswith((b"\n", b"\r\n")):
        return 0
    end = message.find(b"\n\r\n")
    end = len(message) if end < 0 else end + 1
    bare = message.find(b"\n\n", 0, end)  # an empty line of a bare LF, if one comes first
    return end if bare < 0 else bare + 1


def _field_ranges(block: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(lower-case name, start, end) of each header field, up to the empty line that ends the header."""
    name: bytes | None = None
    start = 0
    position = 0
    size = len(block)
    while position < size:
        newline = block.find(b"\n", position)
        end = size if newline < 0 else newline + 1
        line = block[position:end]
        if line in (b"\n", b"\r\n"):
            break
        if line[:1] not in (b" ", b"\t"):
            if name is not None:
                yield name, start, position
            field_name, colon, _rest = line.partition(b":")
            name = field_name.rstrip(b" \t").lower() if colon else None
            start = position
        position = end
    if name is not None:
        yield name, start, position


def _authserv_id(field: bytes) -> str | None:
    """The authserv-id of an Authentication-Results field (RFC 8601 §2.2), case-folded, or None."""
    text = field.decode("utf-8", "surrogateescape")
    position = skip_cfws(text, text.index(":") + 1)
    if text.startswith('"', position):
        return read_quoted_string(text, position)[0].casefold()
    match = _AUTHSERV_ID_END.search(text, position)
    value = text[position : match.start() if match else len(text)]
    return value.casefold() or None
