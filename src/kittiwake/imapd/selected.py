"""SelectedMailbox: one session's view of its selected mailbox, kept in step with everyone else's changes.

Theory of operation: the view holds the UIDs the client knows, in order, so message sequence number n is
`uids[n - 1]`. Changes made by other sessions or by deliveries arrive from the change bus at any time and are
only queued; `flush()` turns them into untagged responses at the points RFC 9051 §7.5.1 allows. EXPUNGE
(or VANISHED) may not be sent while a FETCH, STORE or SEARCH by sequence number runs, because it would
renumber the messages the client is talking about; the caller says whether expunges may go out now.
New messages are announced with EXISTS after any allowed expunges. A message that arrives and goes again
before the client heard of it is never mentioned. The UID list is an array of 4-byte integers, taken as it
is from the store's UID cache and shared with every session that selected the same state of the mailbox;
it is replaced, never changed in place, so sessions holding it are undisturbed.

\\Recent (RFC 3501 §2.3.2) is the state of this session, not of the message: the UIDs recent here are
kept as a few ranges, filled in by `ImapSession.claim_recent` before new messages are announced, and
every FLAGS this view renders adds \\Recent to them. An IMAP4rev2 session keeps none (RFC 9051 removed it).
"""

from __future__ import annotations

import array
import bisect
from collections.abc import Iterable, Iterator, Sequence

from kittiwake.proto.imap.responses import (
    Exists,
    Expunge,
    FetchResponse,
    FlagsResponse,
    Recent,
    Response,
    ResponseCode,
    Status,
    UntaggedStatus,
    Vanished,
)
from kittiwake.proto.imap.wire_format import encode_flag_list
from kittiwake.store.changes import Change, FlagsChanged, MessagesAdded, MessagesExpunged
from kittiwake.store.models import Flags, FlagUpdate, Mailbox
from kittiwake.store.uid_cache import UID_TYPECODE, without

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
RECENT_FLAG = "\\Recent"


class SelectedMailbox:
    def __init__(
        self, mailbox: Mailbox, *, read_only: bool, owner: object, reports_recent: bool = True
    ) -> None:
        self.mailbox = mailbox
        self.id = mailbox.id
        self.uid_validity = mailbox.uid_validity
        self.read_only = read_only
        self.highest_modseq = mailbox.highest_modseq
        self.uids: array.array[int] = array.array(UID_TYPECODE)
        self._owner = owner
        self._added: list[int] = []
        self._expunged: set[int] = set()
        self._flags: dict[int, FlagUpdate] = {}
        self.notify: object | None = None  # set by IDLE: called when a change arrives
        self.keywords: set[str] = set()  # the keywords the client was told of in FLAGS
        self._noted_keywords: set[str] = set()
        self.reports_recent = reports_recent  # False for IMAP4rev2 sessions
        self._recent: list[tuple[int, int]] = []  # UIDs first <= uid < end recent in this session
        self.recent_known_below = 0  # every UID below this is known to be recent here or not
        self._reported_recent = 0  # the count the last RECENT response gave

    def load(self, uids: Sequence[int]) -> None:
        """Take the UID list read from the store (after subscribing, so nothing is missed in between)."""
        self.uids = uids if isinstance(uids, array.array) else array.array(UID_TYPECODE, uids)
        newest = self.uids[-1] if self.uids else 0
        self._added = [uid for uid in self._added if uid > newest]

    # -- numbering ---------------------------------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def sequence_number(self, uid: int) -> int | None:
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return None

    def uid_at(self, sequence_number: int) -> int:
        return self.uids[sequence_number - 1]

    @property
    def has_pending(self) -> bool:
        return bool(self._added or self._expunged or self._flags)

    @property
    def has_new_messages(self) -> bool:
        return bool(self._added)

    @property
    def newest_uid(self) -> int:
        """The highest UID this session has heard of, announced to the client or not yet."""
        newest = self.uids[-1] if self.uids else 0
        return max(newest, max(self._added, default=0))

    # -- \Recent (RFC 3501 §2.3.2) ----------------------------------------------------------------------

    def note_recent(self, first: int, end: int) -> None:
        """UIDs `first <= uid < end` are recent in this session; whether any UID below `end` is, is settled."""
        start = max(first, self.recent_known_below)
        if self.reports_recent and start < end:
            if self._recent and self._recent[-1][1] == start:
                self._recent[-1] = (self._recent[-1][0], end)
            else:
                self._recent.append((start, end))
        self.recent_known_below = max(self.recent_known_below, end)

    @property
    def has_recent(self) -> bool:
        return bool(self._recent)

    def is_recent(self, uid: int) -> bool:
        return any(first <= uid < end for first, end in self._recent)

    def recent_between(self, low: int, high: int) -> bool:
        """Whether any UID from `low` to `high` (inclusive) may be recent in this session."""
        return any(first <= high and low < end for first, end in self._recent)

    def recent_count(self) -> int:
        """Messages announced to the client that are recent in this session."""
        uids = self.uids
        return sum(
            bisect.bisect_left(uids, end) - bisect.bisect_left(uids, first) for first, end in self._recent
        )

    def recent_response(self) -> Recent:
        """`* n RECENT` (RFC 3501 §7.3.2), remembering the count sent."""
        self._reported_recent = self.recent_count()
        return Recent(count=self._reported_recent)

    def recent_indexes(self, start: int, stop: int) -> Iterator[int]:
        """The positions in `uids`, from `start` to before `stop`, of the messages recent in this session."""
        for first, end in self._recent:
            low = max(start, bisect.bisect_left(self.uids, first))
            yield from range(low, min(stop, bisect.bisect_left(self.uids, end)))

    def flag_names(self, uid: int, flags: Flags) -> list[str]:
        """A message's flags as FETCH FLAGS names them in this session: \\Recent after the system flags."""
        names = flags.names()
        if self._recent and self.is_recent(uid):
            names.insert(len(names) - len(flags.keywords), RECENT_FLAG)
        return names

    def note_keywords(self, keywords: Iterable[str]) -> None:
        """Keywords in use in the mailbox (new messages may carry some); the next flush announces new ones."""
        self._noted_keywords.update(keywords)

    def flag_list_responses(self, keywords: Iterable[str] = ()) -> list[Response]:
        """FLAGS and PERMANENTFLAGS naming the system flags and every keyword known (RFC 9051 §7.3.5, §7.1),
        after adding `keywords` to those."""
        self.keywords.update(keywords)
        flags = (*SYSTEM_FLAGS, *sorted(self.keywords))
        permanent = () if self.read_only else (*flags, "\\*")
        return [
            FlagsResponse(flags=flags),
            UntaggedStatus(
                status=Status.OK, text="Flags permitted", code=ResponseCode.permanentflags(permanent)
            ),
        ]

    def unknown_keywords(self, keywords: Iterable[str]) -> set[str]:
        return set(keywords) - self.keywords

    # -- changes from the bus ---------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        if isinstance(change, MessagesAdded):
            self._added.extend(change.uids)
        elif isinstance(change, MessagesExpunged):
            for item in change.expunged:
                if item.uid in self._added:
                    self._added.remove(item.uid)
                else:
                    self._expunged.add(item.uid)
                self._flags.pop(item.uid, None)
        elif isinstance(change, FlagsChanged) and change.origin is not self._owner:
            for update in change.updates:
                self._flags[update.uid] = update
        if isinstance(change, MessagesAdded | MessagesExpunged | FlagsChanged):
            self.highest_modseq = max(self.highest_modseq, change.highest_modseq)
        callback = self.notify
        if callable(callback):
            callback()

    def take_flag_updates(self, uids: Iterable[int]) -> dict[int, FlagUpdate]:
        """Queued flag changes of other sessions to these messages, no longer queued: the session's own
        STORE is about to report newer flags for them, and the older ones must not follow it."""
        return {uid: update for uid in uids if (update := self._flags.pop(uid, None)) is not None}

    # -- turning changes into responses ------------------------------------------------------------------

    def flush(self, *, allow_expunge: bool, vanished: bool, with_modseq: bool) -> list[Response]:
        responses: list[Response] = []
        # RFC 9051 §7.3.5: a keyword the client was not told of is announced in FLAGS before it is used.
        new_keywords = self.unknown_keywords(
            self._noted_keywords.union(*(update.flags.keywords for update in self._flags.values()))
        )
        self._noted_keywords.clear()
        if new_keywords:
            responses += self.flag_list_responses(new_keywords)
        responses += self._flag_responses(with_modseq)
        size_changed = False
        if allow_expunge and self._expunged:
            expunges = self._expunge_responses(vanished)
            responses += expunges
            size_changed = bool(expunges)
        grown = False
        if self._added:
            newest = self.uids[-1] if self.uids else 0
            fresh = sorted(uid for uid in set(self._added) if uid > newest)
            self._added = []
            if fresh:
                self.uids = self.uids + array.array(self.uids.typecode, fresh)
                responses.append(Exists(count=len(self.uids)))
                grown = True
        # RFC 3501 §7.3.2: RECENT comes with a change in the size of the mailbox; after expunges only when
        # the count is not what the client was last told.
        if self.reports_recent and (grown or (size_changed and self.recent_count() != self._reported_recent)):
            responses.append(self.recent_response())
        return responses

    def _flag_responses(self, with_modseq: bool) -> list[Response]:
        responses: list[Response] = []
        for uid in sorted(self._flags):
            number = self.sequence_number(uid)
            if number is None or uid in self._expunged:
                continue
            update = self._flags[uid]
            items: list[tuple[str, bytes]] = [
                ("UID", b"%d" % uid),
                ("FLAGS", encode_flag_list(self.flag_names(uid, update.flags))),
            ]
            if with_modseq:
                items.append(("MODSEQ", b"(%d)" % update.modseq))
            responses.append(FetchResponse(sequence_number=number, items=tuple(items)))
        self._flags.clear()
        return responses

    def _expunge_responses(self, vanished: bool) -> list[Response]:
        gone = sorted(uid for uid in self._expunged if self.sequence_number(uid) is not None)
        self._expunged.clear()
        if not gone:
            return []
        responses: list[Response]
        if vanished:
            responses = [Vanished(uids=tuple(gone))]  # RFC 7162 §3.2.10
        else:
            # Each EXPUNGE renumbers the later messages, so report from the highest number down: every number
            # sent is then still valid when the client reads it.
            numbers = [self.sequence_number(uid) or 0 for uid in gone]
            responses = [Expunge(sequence_number=n) for n in sorted(numbers, reverse=True)]
        self.uids = without(self.uids, set(gone))
        return responses


def uid_runs(uids: Sequence[int], known: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive UID ranges covering exactly `uids` among the `known` (sorted) UIDs of the mailbox.

    Two UIDs adjacent in `known` can share a range even with a numeric gap between them: no other message
    can lie in that gap, since UIDs only grow and new messages are always above every known one.
    """
    if not uids:
        return []
    first, last = bisect.bisect_left(known, uids[0]), bisect.bisect_left(known, uids[-1])
    if last - first + 1 == len(uids) and last < len(known) and known[last] == uids[-1]:
        return [(uids[0], uids[-1])]  # every known message in between: one range (1:*, n:m)
    runs: list[tuple[int, int]] = []
    previous_index = -2
    for uid in uids:
        index = bisect.bisect_left(known, uid)
        if runs and index == previous_index + 1:
            runs[-1] = (runs[-1][0], uid)
        else:
            runs.append((uid, uid))
        previous_index = index
    return runs
