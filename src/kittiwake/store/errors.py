"""Domain refusals raised by the store. Each says whether trying again later may help."""

from __future__ import annotations


class KittiwakeError(Exception):
    """Base of refusals the servers map to protocol replies; `transient` means 4xx / try again."""

    transient: bool = False


class StoreError(KittiwakeError):
    pass


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class DomainNotFound(NotFound):
    pass


class AccountNotFound(NotFound):
    pass


class AliasNotFound(NotFound):
    pass


class MailboxNotFound(NotFound):
    pass


class MailboxExists(AlreadyExists):
    pass


class DomainExists(AlreadyExists):
    pass


class AccountExists(AlreadyExists):
    pass


class InvalidMailboxName(StoreError):
    pass


class MailboxHasChildren(StoreError):
    """RFC 9051 §6.3.5: a mailbox with inferiors and \\Noselect cannot be deleted; ours keep their children."""


class CannotDeleteInbox(StoreError):
    pass


class QuotaExceeded(StoreError):
    pass


class StoreUnavailable(StoreError):
    transient = True
