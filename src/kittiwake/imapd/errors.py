"""One table from domain refusals to tagged NO responses with their RFC 5530 response codes."""

from __future__ import annotations

from kittiwake.auth.authenticator import TooManyFailures
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.errors import MailboxNameError
from kittiwake.store import errors


class CommandFailed(Exception):
    """A handler's own refusal: answered `tag NO [code] text` (or BAD when `bad`)."""

    def __init__(self, text: str, code: r.ResponseCode | None = None, *, bad: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.bad = bad


_TABLE: tuple[tuple[type[Exception], r.ResponseCode | None, str | None], ...] = (
    (errors.MailboxNotFound, r.NONEXISTENT, "Mailbox does not exist"),
    (MailboxNameError, r.CANNOT, None),
    (errors.MailboxExists, r.ALREADYEXISTS, "Mailbox already exists"),
    (errors.InvalidMailboxName, r.CANNOT, None),
    (errors.MailboxHasChildren, r.HASCHILDREN, None),
    (errors.CannotDeleteInbox, r.CANNOT, "INBOX cannot be deleted"),
    (errors.QuotaExceeded, r.OVERQUOTA, None),
    (errors.StoreUnavailable, r.UNAVAILABLE, None),
    (TooManyFailures, r.UNAVAILABLE, None),
)


def refusal_for(error: Exception, tag: str) -> r.Tagged | None:
    """The tagged answer for a known refusal, or None for a bug (the caller logs it and says SERVERBUG)."""
    if isinstance(error, CommandFailed):
        status = r.Status.BAD if error.bad else r.Status.NO
        return r.Tagged(tag=tag, status=status, text=error.text, code=error.code)
    for kind, code, text in _TABLE:
        if isinstance(error, kind):
            return r.Tagged(tag=tag, status=r.Status.NO, text=text or str(error), code=code)
    return None
