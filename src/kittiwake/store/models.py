"""Records the store hands out: frozen dataclasses with no database detail."""

from __future__ import annotations

import array
import enum
from dataclasses import dataclass


class SystemFlag(enum.IntFlag):
    """RFC 9051 §2.3.2 system flags, stored as a bit mask."""

    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16


SYSTEM_FLAG_NAMES: dict[str, SystemFlag] = {
    "\\seen": SystemFlag.SEEN,
    "\\answered": SystemFlag.ANSWERED,
    "\\flagged": SystemFlag.FLAGGED,
    "\\deleted": SystemFlag.DELETED,
    "\\draft": SystemFlag.DRAFT,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Flags:
    """A message's flags: system flags as a mask plus keywords in the case the client first used."""

    system: SystemFlag = SystemFlag(0)  # noqa: RUF009 - an immutable enum value
    keywords: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, names: tuple[str, ...] | list[str]) -> Flags:
        system = SystemFlag(0)
        keywords: set[str] = set()
        for name in names:
            flag = SYSTEM_FLAG_NAMES.get(name.lower())
            if flag is not None:
                system |= flag
            elif not name.startswith("\\"):
                keywords.add(name)
        return cls(system=system, keywords=frozenset(keywords))

    def names(self) -> list[str]:
        """Flag names in a stable order: system flags first, then keywords sorted."""
        system = [spelling for flag, spelling in _SPELLING.items() if flag & self.system]
        return system + sorted(self.keywords)


_SPELLING = {flag: "\\" + name[1:].capitalize() for name, flag in SYSTEM_FLAG_NAMES.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Domain:
    id: int
    name: str  # lower-case A-labels


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    id: int
    address: str  # local@domain, domain lower-case
    password_hash: str
    quota_bytes: int | None  # None = unlimited
    quota_messages: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alias:
    source: str  # "local@domain", or "@domain" for a catch-all
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    id: int
    account_id: int
    name: str  # full hierarchical name, "/" delimited, UTF-8; "INBOX" spelt so
    special_use: str | None  # "\\Sent", "\\Drafts", ... (RFC 6154)
    uid_validity: int
    uid_next: int
    highest_modseq: int
    messages: int
    unseen: int
    deleted: int
    size: int
    # RFC 3501 §2.3.2 \Recent: UIDs from here up were told to no session that could claim them yet, and
    # `recent` messages are among them (what STATUS RECENT reports).
    first_recent_uid: int
    recent: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """One message in one mailbox. `structure` is the stored JSON, loaded only when asked for."""

    mailbox_id: int
    uid: int
    modseq: int
    internal_date: int  # seconds since the epoch (RFC 9051 INTERNALDATE)
    size: int
    flags: Flags
    blob_id: int
    structure: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSummary:
    """The small per-message row a SELECT loads for a whole mailbox."""

    uid: int
    modseq: int
    flags: Flags


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingMessage:
    """A message to add to one or more mailboxes; its bytes are already durable (see BlobRef)."""

    blob: BlobRef
    size: int
    internal_date: int
    structure: bytes  # mail.structure_codec dump, parsed once at delivery
    flags: Flags = Flags()


@dataclass(frozen=True, slots=True, kw_only=True)
class AddedMessage:
    mailbox_id: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobRef:
    """Where the bytes of a new message are: inline (small) or a durable file inside the blob area."""

    data: bytes | None = None  # set for small messages kept in the database
    file_name: str | None = None  # set for a file already fsync'd in the blob area
    prefix: bytes = b""  # header fields the server put in front; the message is prefix + data (or file)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunged:
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagUpdate:
    uid: int
    modseq: int
    flags: Flags


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagSnapshot:
    """The flags of every message of a mailbox at one moment, as columns: what a client resynchronising a
    large mailbox asks for. Shared between sessions; never changed."""

    uids: array.array[int]  # ascending
    system: array.array[int]  # SystemFlag bits, one byte per message, in the order of `uids`
    keywords: dict[int, str]  # uid -> space-separated keywords, only for messages that have some
