"""IMAP command handlers, one module per command family; importing this package registers them all."""

from kittiwake.imapd.handlers import (
    append,
    auth,
    copy_move,
    expunge,
    fetch,
    idle,
    mailboxes,
    quota,
    search,
    select,
    store_flags,
)

__all__ = [
    "append",
    "auth",
    "copy_move",
    "expunge",
    "fetch",
    "idle",
    "mailboxes",
    "quota",
    "search",
    "select",
    "store_flags",
]
