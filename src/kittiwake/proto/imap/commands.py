"""IMAP commands as frozen dataclasses, one per command; `parser.parse_command` builds them.

Mailbox names are `str` (decoded by `mailbox_names`), credentials and SASL data stay `bytes`. Commands with a
UID variant carry `uid: bool`.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from kittiwake.proto.imap.fetch_items import FetchItem
from kittiwake.proto.imap.receiver import StreamedLiteral
from kittiwake.proto.imap.search_keys import SearchKey, SearchReturn, SortCriterion, ThreadAlgorithm
from kittiwake.proto.imap.sequence_set import SequenceSet


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(Command):
    """`initial_response` is the base64 text of SASL-IR (RFC 4959); b"" for "=", None when absent."""

    mechanism: str  # upper-cased
    initial_response: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(Command):
    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable(Command):
    capabilities: tuple[str, ...]  # upper-cased


@dataclass(frozen=True, slots=True, kw_only=True)
class QresyncParameters:
    """RFC 7162 §3.2.5: `(QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]]))`."""

    uid_validity: int
    modseq: int
    known_uids: SequenceSet | None = None
    known_sequence_numbers: SequenceSet | None = None
    known_sequence_uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Select(Command):
    mailbox: str
    condstore: bool = False
    qresync: QresyncParameters | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Examine(Command):
    mailbox: str
    condstore: bool = False
    qresync: QresyncParameters | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Create(Command):
    """A trailing hierarchy delimiter has been removed (RFC 9051 §6.3.4)."""

    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3: `(USE (\Drafts))`


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(Command):
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(Command):
    mailbox: str
    new_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Command):
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(Command):
    mailbox: str


class ListSelection(enum.Enum):
    """LIST-EXTENDED selection options (RFC 5258 §3.1, RFC 6154 §5.1)."""

    SUBSCRIBED = "SUBSCRIBED"
    REMOTE = "REMOTE"
    RECURSIVEMATCH = "RECURSIVEMATCH"
    SPECIAL_USE = "SPECIAL-USE"


class StatusItem(enum.Enum):
    """STATUS data items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT)."""

    MESSAGES = "MESSAGES"
    UIDNEXT = "UIDNEXT"
    UIDVALIDITY = "UIDVALIDITY"
    UNSEEN = "UNSEEN"
    DELETED = "DELETED"
    SIZE = "SIZE"
    RECENT = "RECENT"
    HIGHESTMODSEQ = "HIGHESTMODSEQ"
    APPENDLIMIT = "APPENDLIMIT"


@dataclass(frozen=True, slots=True, kw_only=True)
class ListReturn:
    """LIST-EXTENDED return options (RFC 5258 §3.2, RFC 5819 STATUS, RFC 6154 SPECIAL-USE)."""

    children: bool = False
    subscribed: bool = False
    special_use: bool = False
    status: tuple[StatusItem, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class List(Command):
    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[ListSelection] = frozenset()
    returns: ListReturn = ListReturn()
    extended: bool = False  # selection or return options were given: answer in LIST-EXTENDED form


@dataclass(frozen=True, slots=True, kw_only=True)
class Lsub(Command):
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Command):
    mailbox: str
    items: tuple[StatusItem, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendMessage:
    """One message of an APPEND (several with MULTIAPPEND, RFC 3502).

    `content` is the literal data, or the `StreamedLiteral` whose `LiteralChunk` events carried it.
    """

    flags: tuple[str, ...] = ()
    internal_date: datetime.datetime | None = None
    content: bytes | StreamedLiteral
    binary: bool = False  # literal8 (RFC 3516 §4.4)
    utf8: bool = False  # `UTF8 (~{n})` (RFC 6855 §4)


@dataclass(frozen=True, slots=True, kw_only=True)
class Append(Command):
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Check(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Unselect(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE with its UID set (RFC 9051 §6.4.9, RFC 4315)."""

    uid: bool = False
    sequence_set: SequenceSet | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Search(Command):
    """`returns` is None for a plain SEARCH; a `RETURN ()` list asks for ESEARCH (RFC 4731)."""

    uid: bool = False
    charset: str | None = None
    criteria: SearchKey
    returns: tuple[SearchReturn, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(Command):
    uid: bool = False
    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None  # RFC 7162 §3.1.4.1
    vanished: bool = False  # RFC 7162 §3.2.6


class StoreMode(enum.Enum):
    REPLACE = "FLAGS"
    ADD = "+FLAGS"
    REMOVE = "-FLAGS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Store(Command):
    uid: bool = False
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool = False
    flags: tuple[str, ...]
    unchanged_since: int | None = None  # RFC 7162 §3.1.3


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(Command):
    uid: bool = False
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Move(Command):
    uid: bool = False
    sequence_set: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Id(Command):
    """RFC 2971: field/value pairs, or None for `ID NIL`."""

    parameters: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuota(Command):
    root: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuotaRoot(Command):
    mailbox: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuota(Command):
    root: str
    limits: tuple[tuple[str, int], ...]  # (resource name upper-cased, limit), RFC 9208 §4.1.3


@dataclass(frozen=True, slots=True, kw_only=True)
class Sort(Command):
    uid: bool = False
    criteria: tuple[SortCriterion, ...]
    charset: str
    search: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Thread(Command):
    uid: bool = False
    algorithm: ThreadAlgorithm
    charset: str
    search: SearchKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Compress(Command):
    mechanism: str  # upper-cased; RFC 4978 defines DEFLATE


ALL_COMMANDS: tuple[type[Command], ...] = (
    Capability, Noop, Logout, StartTls, Authenticate, Login, Enable, Select, Examine, Create, Delete, Rename,
    Subscribe, Unsubscribe, List, Lsub, Namespace, Status, Append, Idle, Check, Close, Unselect, Expunge,
    Search, Fetch, Store, Copy, Move, Id, GetQuota, GetQuotaRoot, SetQuota, Sort, Thread, Compress,
)  # fmt: skip
