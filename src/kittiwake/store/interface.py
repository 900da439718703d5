"""The Store protocol: everything the servers, delivery and admin need from persistence.

No SQL or driver detail crosses this line. Every method is a coroutine; writes return only after their
transaction is durable (fsync'd), which is what lets callers answer 250 or OK.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from kittiwake.store.changes import ChangeBus
from kittiwake.store.models import (
    Account,
    AddedMessage,
    Alias,
    BlobRef,
    Domain,
    Expunged,
    Flags,
    FlagSnapshot,
    FlagUpdate,
    IncomingMessage,
    Mailbox,
    MessageRecord,
)

UidRanges = Sequence[tuple[int, int]]  # inclusive (first, last) UID ranges, e.g. ((1, 5), (9, 9))
# What a flag row may carry after (uid, system flags, keywords), in the order asked for.
FlagRowColumn = Literal["modseq", "internal_date", "size"]

# Every new account gets these, with their RFC 6154 attributes.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Junk", "\\Junk"),
    ("Trash", "\\Trash"),
    ("Archive", "\\Archive"),
)


class FlagMode(enum.Enum):
    """RFC 9051 §6.4.6 STORE: FLAGS replaces, +FLAGS adds, -FLAGS removes."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreFlagsResult:
    updated: tuple[FlagUpdate, ...]  # messages whose flags changed, with their new MODSEQ
    unchanged: tuple[FlagUpdate, ...]  # messages in the set whose flags were already so
    failed_modseq: tuple[int, ...]  # RFC 7162 §3.1.3 UNCHANGEDSINCE failures (UIDs)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedRecipient:
    address: str
    params: str = "{}"  # JSON kept for the queue: NOTIFY, ORCPT


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRequest:
    """Relay a message: one queue entry, one row per recipient. `params` is JSON kept for the queue
    (SMTPUTF8, BODY, REQUIRETLS, RET, ENVID, and `body_offset`, the bytes of the stored message that are ours
    alone, such as the Return-Path line of the local copy, and are not sent onwards)."""

    queue_id: str
    sender: str
    recipients: tuple[QueuedRecipient, ...]
    params: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRecipientState:
    address: str
    params: str  # JSON: NOTIFY, ORCPT
    status: str  # pending | deferred | delivered | failed
    attempts: int
    next_attempt: int
    last_reply: str | None
    remote_mta: str | None
    warned: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueEntry:
    id: str
    sender: str
    params: str  # JSON, see QueueRequest
    blob_id: int
    size: int
    created: int
    recipients: tuple[QueueRecipientState, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipientOutcome:
    """What one attempt (or a decision to give up) made of one recipient."""

    address: str
    status: str  # delivered | deferred | failed
    reply: str | None
    remote_mta: str | None
    next_attempt: int
    warned: bool = False


class Store(Protocol):
    changes: ChangeBus

    # Lifecycle and checks
    async def close(self) -> None: ...
    async def verify(self) -> list[str]: ...

    # Domains, accounts, aliases
    async def add_domain(self, name: str) -> Domain: ...
    async def remove_domain(self, name: str) -> None: ...
    async def list_domains(self) -> list[Domain]: ...
    async def add_account(self, address: str, password_hash: str) -> Account: ...
    async def remove_account(self, address: str) -> None: ...
    async def get_account(self, address: str) -> Account | None: ...
    async def get_account_by_id(self, account_id: int) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def set_password_hash(self, account_id: int, password_hash: str) -> None: ...
    async def set_quota(
        self, account_id: int, quota_bytes: int | None, quota_messages: int | None
    ) -> None: ...
    async def add_alias(self, source: str, targets: Sequence[str]) -> None: ...
    async def remove_alias(self, source: str) -> None: ...
    async def get_alias(self, source: str) -> Alias | None: ...
    async def list_aliases(self) -> list[Alias]: ...

    # Mailboxes
    async def list_mailboxes(self, account_id: int) -> list[Mailbox]: ...
    async def get_mailbox(self, account_id: int, name: str) -> Mailbox: ...
    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox: ...
    async def create_mailbox(self, account_id: int, name: str, special_use: str | None = None) -> Mailbox: ...
    async def delete_mailbox(self, account_id: int, name: str) -> None: ...
    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None: ...
    async def subscribe(self, account_id: int, name: str) -> None: ...
    async def unsubscribe(self, account_id: int, name: str) -> None: ...
    async def list_subscriptions(self, account_id: int) -> list[str]: ...
    async def account_usage(self, account_id: int) -> tuple[int, int]: ...  # (bytes, messages)

    # Message bytes
    def new_spool_path(self) -> Path: ...
    async def save_blob(self, data: bytes) -> BlobRef: ...
    async def adopt_blob_file(self, temp_path: Path, size: int) -> BlobRef: ...
    async def read_blob(self, blob_id: int, start: int, end: int) -> bytes: ...
    async def read_blob_ranges(self, ranges: Sequence[tuple[int, int, int]]) -> list[bytes]: ...
    async def open_blob(self, blob_id: int, start: int, end: int) -> AsyncIterator[bytes]: ...

    # Messages
    async def deliver(
        self, message: IncomingMessage, mailbox_ids: Sequence[int], *, relay: QueueRequest | None = None
    ) -> list[AddedMessage]: ...
    async def append(self, mailbox_id: int, messages: Sequence[IncomingMessage]) -> list[AddedMessage]: ...
    async def mailbox_keywords(self, mailbox_id: int) -> list[str]: ...
    async def load_uids(self, mailbox_id: int) -> Sequence[int]: ...
    async def first_unseen_uid(self, mailbox_id: int, *, known: Mailbox | None = None) -> int | None: ...
    # RFC 3501 §2.3.2 \Recent: claim (first, end) for a read-write session, or only look (read-only).
    async def claim_recent(self, mailbox_id: int) -> tuple[int, int]: ...
    async def first_recent_uid(self, mailbox_id: int) -> int: ...
    async def load_messages(
        self, mailbox_id: int, uids: UidRanges, *, with_structure: bool = False
    ) -> list[MessageRecord]: ...
    async def flag_snapshot(self, mailbox_id: int) -> FlagSnapshot: ...
    async def load_flag_rows(
        self, mailbox_id: int, uids: UidRanges, extra: Sequence[FlagRowColumn] = ()
    ) -> list[tuple[Any, ...]]: ...
    async def load_changed_since(self, mailbox_id: int, modseq: int) -> list[MessageRecord]: ...
    async def load_expunged_since(self, mailbox_id: int, modseq: int) -> list[Expunged]: ...
    async def store_flags(
        self,
        mailbox_id: int,
        uids: UidRanges,
        mode: FlagMode,
        flags: Flags,
        *,
        unchanged_since: int | None = None,
        origin: object | None = None,
    ) -> StoreFlagsResult: ...
    async def expunge(self, mailbox_id: int, uids: UidRanges | None = None) -> list[Expunged]: ...
    async def copy_messages(
        self, source_id: int, uids: UidRanges, target_id: int, *, move: bool = False
    ) -> list[tuple[int, int]]: ...

    # Outbound queue
    async def enqueue(self, request: QueueRequest, blob: BlobRef, size: int) -> None: ...
    async def count_queued(self) -> int: ...
    async def load_queue(self, *, due_before: int | None = None, limit: int = 1000) -> list[QueueEntry]: ...
    async def get_queue_entry(self, queue_id: str) -> QueueEntry | None: ...
    async def schedule_queue_attempt(
        self, queue_id: str, addresses: Sequence[str], next_attempt: int
    ) -> None: ...
    async def record_queue_outcomes(self, queue_id: str, outcomes: Sequence[RecipientOutcome]) -> bool: ...
    async def retry_queue(self, queue_id: str | None, now: int) -> int: ...
    async def delete_queue_entry(self, queue_id: str) -> None: ...
