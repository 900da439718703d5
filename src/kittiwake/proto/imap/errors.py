"""Peer protocol errors raised by the IMAP command parser.

The server answers every one of them itself: a `ParseError` becomes `tag BAD text`; a `BadCharset` becomes
`tag NO [BADCHARSET (UTF-8 US-ASCII)] text` (RFC 9051 §6.4.4: an unknown charset is a NO, not a BAD); a
`MailboxNameRefused` becomes `tag NO text`, with [CANNOT] for a name to be created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kittiwake.proto.imap.commands import Command


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


class MailboxNameRefused(ParseError):
    """The command is well formed, but a mailbox name in it is one the server cannot accept.

    The name is not valid modified UTF-7 (RFC 3501 §5.1.3) or, once UTF-8 names are enabled, not valid
    UTF-8 (RFC 9051 §5.1), or it is a name that may not be created. That is a NO, not a BAD: the syntax is
    right. `command` is the parsed command (with the refused name left empty), so the server can still
    check the state and do what a failing command of its kind does; `creating` says the name was the one
    to create (CREATE, RENAME's new name), answered NO [CANNOT] (RFC 5530 §3).
    """

    def __init__(self, tag: str, text: str, *, command: Command, creating: bool) -> None:
        super().__init__(tag, text)
        self.command = command
        self.creating = creating


class MailboxNameError(ValueError):
    """A mailbox name is not valid modified UTF-7 / UTF-8, or may not be created."""
