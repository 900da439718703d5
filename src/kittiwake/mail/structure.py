"""The MIME part tree of a message with the byte offsets IMAP needs, parsed once at delivery.

Offsets are absolute positions in the stored message bytes, so `BODY[1.2]`, `BODY[1.HEADER]`, `BODY[1.MIME]`
and `BODY[1.TEXT]` are each one ranged read, with no re-parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from kittiwake.mail.envelope import Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyPart:
    """One MIME entity: its header block, its body, and what BODYSTRUCTURE reports about it.

    `header_start`..`body_start` is the part's header block including the blank line that ends it
    (`BODY[n.MIME]`, or `BODY[HEADER]` at the top); `body_start`..`body_end` its body (`BODY[n]`/`BODY[n.TEXT]`).
    Strings are header values decoded as UTF-8 with surrogateescape, so no byte is lost.
    """

    header_start: int
    body_start: int
    body_end: int
    body_lines: int  # CRLF-terminated lines in the body (RFC 9051 `body-fld-lines`)
    media_type: str  # lower case, e.g. "text"
    media_subtype: str  # lower case, e.g. "plain"
    params: tuple[tuple[str, str], ...]  # Content-Type parameters, names lower case, values unquoted
    content_id: str | None
    description: str | None
    encoding: str  # Content-Transfer-Encoding, upper case; "7BIT" when absent
    md5: str | None
    disposition: str | None  # lower case, e.g. "attachment"
    disposition_params: tuple[tuple[str, str], ...]
    language: tuple[str, ...]
    location: str | None
    children: tuple[BodyPart, ...]  # the parts of a multipart, in order
    message: MessageStructure | None  # the encapsulated message of message/rfc822 (and message/global)

    @property
    def body_size(self) -> int:
        return self.body_end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.media_type == "multipart"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStructure:
    """A whole message (or an encapsulated message/rfc822 part): its envelope and its root part.

    For the top-level message `root.header_start` is 0 and `root.body_end` is `size`.
    """

    size: int
    envelope: Envelope
    root: BodyPart
