"""The change bus: tells everyone watching a mailbox what another session or a delivery changed.

Events are published after the transaction that made them has committed, on the event loop thread, in commit
order. The in-process bus here serves one node; the PostgreSQL store supplies a LISTEN/NOTIFY one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kittiwake.store.models import Expunged, FlagUpdate


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagesAdded:
    mailbox_id: int
    uids: tuple[int, ...]
    highest_modseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagsChanged:
    mailbox_id: int
    updates: tuple[FlagUpdate, ...]
    highest_modseq: int
    origin: object | None = None  # the session that made the change, so it can tell its own from others'


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagesExpunged:
    mailbox_id: int
    expunged: tuple[Expunged, ...]
    highest_modseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxesChanged:
    """A mailbox of the account was created, renamed or deleted."""

    account_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagesQueued:
    """Mail was added to the outbound queue: the queue worker need not wait for its next pass."""

    queue_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangedElsewhere:
    """Another process (a `kittiwake queue flush`, say) committed to the store; what it changed is unknown,
    so the queue worker looks again at once instead of at its next pass."""


MailboxChange = MessagesAdded | FlagsChanged | MessagesExpunged
Change = MailboxChange | MailboxesChanged | MessagesQueued | ChangedElsewhere
Subscriber = Callable[[Change], None]


class ChangeBus(Protocol):
    def subscribe_mailbox(self, mailbox_id: int, subscriber: Subscriber) -> None: ...
    def unsubscribe_mailbox(self, mailbox_id: int, subscriber: Subscriber) -> None: ...
    def subscribe_account(self, account_id: int, subscriber: Subscriber) -> None: ...
    def unsubscribe_account(self, account_id: int, subscriber: Subscriber) -> None: ...
    def subscribe_queue(self, subscriber: Subscriber) -> None: ...
    def publish(self, change: Change) -> None: ...


class LocalChangeBus:
    """In-process bus: subscribers are plain callables run on the event loop thread; they must not block."""

    def __init__(self) -> None:
        self._mailboxes: dict[int, list[Subscriber]] = defaultdict(list)
        self._accounts: dict[int, list[Subscriber]] = defaultdict(list)
        self._queue: list[Subscriber] = []

    def subscribe_mailbox(self, mailbox_id: int, subscriber: Subscriber) -> None:
        self._mailboxes[mailbox_id].append(subscriber)

    def unsubscribe_mailbox(self, mailbox_id: int, subscriber: Subscriber) -> None:
        _remove(self._mailboxes, mailbox_id, subscriber)

    def subscribe_account(self, account_id: int, subscriber: Subscriber) -> None:
        self._accounts[account_id].append(subscriber)

    def unsubscribe_account(self, account_id: int, subscriber: Subscriber) -> None:
        _remove(self._accounts, account_id, subscriber)

    def subscribe_queue(self, subscriber: Subscriber) -> None:
        self._queue.append(subscriber)

    def publish(self, change: Change) -> None:
        if isinstance(change, MessagesQueued | ChangedElsewhere):
            targets: list[Subscriber] | tuple[()] = self._queue
        elif isinstance(change, MailboxesChanged):
            targets = self._accounts.get(change.account_id, ())
        else:
            targets = self._mailboxes.get(change.mailbox_id, ())
        for subscriber in tuple(targets):
            subscriber(change)


def _remove(table: dict[int, list[Subscriber]], key: int, subscriber: Subscriber) -> None:
    subscribers = table.get(key)
    if subscribers and subscriber in subscribers:
        subscribers.remove(subscriber)
        if not subscribers:
            del table[key]
