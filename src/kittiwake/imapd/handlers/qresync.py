"""QRESYNC on SELECT (RFC 7162 §3.2.5): what changed since the client's last known mod-sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator

from kittiwake.imapd.selected import SelectedMailbox
from kittiwake.imapd.session import ImapSession
from kittiwake.proto.imap import commands as c
from kittiwake.proto.imap import responses as r
from kittiwake.proto.imap.wire_format import encode_flag_list


async def resync(
    session: ImapSession, selected: SelectedMailbox, params: c.QresyncParameters
) -> AsyncIterator[r.Response]:
    if params.uid_validity != selected.uid_validity:
        return  # the client's cache is void; it must resynchronise from scratch
    store = session.store
    vanished = [e.uid for e in await store.load_expunged_since(selected.id, params.modseq)]
    if params.known_uids is not None:
        known = set(params.known_uids.resolve_uids(vanished)) if vanished else set()
        vanished = [u for u in vanished if u in known]
    if vanished:
        yield r.Vanished(uids=tuple(vanished), earlier=True)
    for record in await store.load_changed_since(selected.id, params.modseq):
        number = selected.sequence_number(record.uid)
        if number is None:
            continue
        items = (
            ("UID", b"%d" % record.uid),
            ("FLAGS", encode_flag_list(selected.flag_names(record.uid, record.flags))),
            ("MODSEQ", b"(%d)" % record.modseq),
        )
        yield r.FetchResponse(sequence_number=number, items=items)
