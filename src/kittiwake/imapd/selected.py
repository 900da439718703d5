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
"""

from __future__ import annotations

import array
import bisect
from collections.abc import Iterable, Sequence

from kittiwake.proto.imap.responses import (
    Exists,
    Expunge,
    FetchResponse,
    FlagsResponse,
    Response,
    ResponseCode,
    Status,
    UntaggedStatus,
    Vanished,
)
from kittiwake.proto.imap.wire_format import encode_flag_list
from kittiwake.store.changes import Change, FlagsChanged, MessagesAdded, MessagesExpunged
from kittiwake.store.models import FlagUpdate, Mailbox
from kittiwake.store.uid_cache import UID_TYPECODE, without

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class SelectedMailbox:
    def __init__(self, mailbox: Mailbox, *, read_only: bool, owner: object) -> None:
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
        if allow_expunge and self._expunged:
            responses += self._expunge_responses(vanished)
        if self._added:
            newest = self.uids[-1] if self.uids else 0
            fresh = sorted(uid for uid in set(self._added) if uid > newest)
            self._added = []
            if fresh:
                self.uids = self.uids + array.array(self.uids.typecode, fresh)
                responses.append(Exists(count=len(self.uids)))
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
                ("FLAGS", encode_flag_list(update.flags.names())),
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
