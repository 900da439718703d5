"""The UIDs of recently selected mailboxes, kept current from the change bus, so SELECT reads no rows.

Theory of operation: reading the UID list of a 100,000-message mailbox from the database costs tens of
milliseconds, and clients SELECT the same few mailboxes over and over. An entry holds a mailbox's UIDs as a
read-only array plus the (message count, UIDNEXT) it corresponds to. Every committed change passes through
`apply`, in commit order, and replaces the array (never changes it in place), so a session that took the
array earlier keeps a stable snapshot and copies it only if it must change it. `lookup` trusts an entry only
while its (count, UIDNEXT) equals the mailbox row the caller just read: UIDs only grow, so a mailbox whose
count and UIDNEXT are unchanged holds the same UIDs, and anything that changed the mailbox without passing
through `apply` (another process, say) makes the entry miss instead of lie.
"""

from __future__ import annotations

import array
import bisect
from collections import OrderedDict
from dataclasses import dataclass

from kittiwake.store.changes import Change, MessagesAdded, MessagesExpunged

# UIDs are 32-bit (RFC 9051 §2.3.1.1), so 4 bytes each; 4 million of them is 16 MiB at most.
UID_TYPECODE = "I"
DEFAULT_CAPACITY = 4_000_000


@dataclass(slots=True)
class _Entry:
    uids: array.array[int]
    messages: int
    uid_next: int


class UidCache:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._held = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def lookup(self, mailbox_id: int, messages: int, uid_next: int) -> array.array[int] | None:
        entry = self._entries.get(mailbox_id)
        if entry is None or entry.messages != messages or entry.uid_next != uid_next:
            return None
        self._entries.move_to_end(mailbox_id)
        return entry.uids

    def store(self, mailbox_id: int, uids: array.array[int], uid_next: int) -> None:
        self._drop(mailbox_id)
        if len(uids) > self._capacity:
            return
        self._entries[mailbox_id] = _Entry(uids=uids, messages=len(uids), uid_next=uid_next)
        self._held += len(uids)
        while self._held > self._capacity:
            self._drop(next(iter(self._entries)))

    def apply(self, change: Change) -> None:
        """Bring an entry up to date with a committed change. Changes the entry already reflects (it was
        read after their commit but before they were published) are recognised and skipped."""
        if isinstance(change, MessagesAdded):
            entry = self._entries.get(change.mailbox_id)
            if entry is not None:
                newest = entry.uids[-1] if entry.uids else 0
                fresh = sorted(uid for uid in change.uids if uid > newest)
                if fresh:
                    self._replace(entry, entry.uids + array.array(UID_TYPECODE, fresh))
                    entry.uid_next = max(entry.uid_next, fresh[-1] + 1)
        elif isinstance(change, MessagesExpunged):
            entry = self._entries.get(change.mailbox_id)
            if entry is not None:
                self._replace(entry, without(entry.uids, {item.uid for item in change.expunged}))

    def _replace(self, entry: _Entry, uids: array.array[int]) -> None:
        self._held += len(uids) - len(entry.uids)
        entry.uids = uids
        entry.messages = len(uids)

    def _drop(self, mailbox_id: int) -> None:
        entry = self._entries.pop(mailbox_id, None)
        if entry is not None:
            self._held -= len(entry.uids)


def without(uids: array.array[int], gone: set[int]) -> array.array[int]:
    """A new array of `uids` (ascending) minus `gone`. A few removals are found by bisection and cut out
    with C memmoves; many take one pass over the whole array."""
    if len(gone) > 64:
        return array.array(uids.typecode, [uid for uid in uids if uid not in gone])
    kept = array.array(uids.typecode, uids)
    for uid in sorted(gone, reverse=True):
        index = bisect.bisect_left(kept, uid)
        if index < len(kept) and kept[index] == uid:
            del kept[index]
    return kept
