"""Outbound queue rows, written in the same transaction as the message they carry."""

from __future__ import annotations

import time

from kittiwake.store.interface import QueueRequest
from kittiwake.store.sqlite.writer import Transaction


def insert_queue_entry(tx: Transaction, request: QueueRequest, blob_id: int) -> None:
    now = int(time.time())
    tx.conn.execute(
        "INSERT INTO queue_messages (id, blob_id, sender, params, created) VALUES (?, ?, ?, ?, ?)",
        (request.queue_id, blob_id, request.sender, request.params, now),
    )
    tx.conn.executemany(
        "INSERT INTO queue_recipients (queue_id, recipient, params, next_attempt) VALUES (?, ?, ?, ?)",
        [(request.queue_id, r.address, r.params, now) for r in request.recipients],
    )
