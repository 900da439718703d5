"""Turning a command's sequence set into the UIDs it names in the selected mailbox."""

from __future__ import annotations

from kittiwake.imapd.errors import CommandFailed
from kittiwake.imapd.selected import SelectedMailbox
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap.sequence_set import InvalidSequenceSet, SequenceSet


def resolve_uids(session: ImapSession, sequence_set: SequenceSet, *, uid: bool) -> list[int]:
    """Sorted UIDs named by the set. RFC 9051 §6.4.8: UIDs that do not exist are ignored; a message
    number beyond the mailbox is an error (BAD). `$` is the saved search result (RFC 5182)."""
    selected: SelectedMailbox = session.require_selected()
    if sequence_set.saved:
        known = set(selected.uids)
        return sorted(u for u in session.saved_search if u in known)
    if uid:
        return sequence_set.resolve_uids(selected.uids)
    try:
        ranges = sequence_set.resolve_message_numbers(selected.exists)
    except InvalidSequenceSet:
        raise CommandFailed("Invalid message sequence number", bad=True) from None
    uids: list[int] = []
    end = 0  # message numbers below this are taken already: sets may overlap or come in any order
    for span in sorted(ranges, key=lambda span: span.start):
        start = max(span.start, end + 1)
        if start < span.stop:
            uids.extend(selected.uids[start - 1 : span.stop - 1])  # sliced in C, not number by number
            end = span.stop - 1
    return uids
