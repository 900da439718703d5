"""Delivering the server's own notifications (delivery status reports) to their recipient.

A local sender's report goes straight into their INBOX; anyone else's goes into the outbound queue with the
null reverse path, so a report that cannot be delivered is never reported on (RFC 5321 §4.5.5).
"""

from __future__ import annotations

import json
import logging
import time

from kittiwake.delivery.inbound import new_queue_id
from kittiwake.delivery.router import Router, Verdict
from kittiwake.mail.structure import parse_structure
from kittiwake.mail.structure_codec import dump_structure
from kittiwake.store.interface import QueuedRecipient, QueueRequest, Store
from kittiwake.store.models import IncomingMessage

log = logging.getLogger(__name__)


class NotificationDelivery:
    """Fills queue.worker.LocalDelivery: the queue hands reports here, so it never imports delivery."""

    def __init__(self, store: Store, router: Router) -> None:
        self._store = store
        self._router = router

    async def __call__(self, recipient: str, message: bytes) -> None:
        route = await self._router.resolve(recipient)
        blob = await self._store.save_blob(message)
        if route.verdict is Verdict.LOCAL and route.accounts:
            mailbox_ids = [(await self._store.get_mailbox(a.id, "INBOX")).id for a in route.accounts]
            incoming = IncomingMessage(
                blob=blob,
                size=len(message),
                internal_date=int(time.time()),
                structure=dump_structure(parse_structure(message)),
            )
            await self._store.deliver(incoming, mailbox_ids)
            return
        if route.verdict is Verdict.UNKNOWN_USER:
            log.warning("notification for unknown local address <%s> dropped", recipient)
            return
        request = QueueRequest(
            queue_id=new_queue_id(),
            sender="",
            recipients=(
                QueuedRecipient(address=recipient, params=json.dumps({"notify": [], "orcpt": None})),
            ),
            params=json.dumps({}),
        )
        await self._store.enqueue(request, blob, len(message))
