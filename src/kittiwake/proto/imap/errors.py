"""Peer protocol errors raised by the IMAP command parser.

The server answers every one of them itself: a `ParseError` becomes `tag BAD text`; a `BadCharset` becomes
`tag NO [BADCHARSET (UTF-8 US-ASCII)] text` (RFC 9051 §6.4.4: an unknown charset is a NO, not a BAD).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class for errors the peer caused; never a bug in the server."""


class ParseError(ProtocolError):
    """The command does not match the grammar; the server answers `tag BAD text`.

    `tag` is `"*"` when the line did not even start with a valid tag (RFC 9051 §7.1.3: untagged BAD).
    """

    def __init__(self, tag: str, text: str) -> None:
        super().__init__(text)
        self.tag = tag
        self.text = text


class BadCharset(ParseError):
    """SEARCH/SORT/THREAD named a charset the server does not support (RFC 9051 §6.4.4, NO [BADCHARSET])."""

    supported: tuple[str, ...] = ("UTF-8", "US-ASCII")


class MailboxNameError(ValueError):
    """A mailbox name is not valid modified UTF-7 / UTF-8, or may not be created."""
