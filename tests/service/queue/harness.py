"""What the outbound service tests do to a running kittiwake: submit mail, run the queue, read a mailbox."""

from __future__ import annotations

import asyncio
import smtplib

from tests.service.server_harness import PASSWORD, RunningServer

MESSAGE = (
    b"From: alice@example.org\r\nTo: friend@remote.test\r\nSubject: hi\r\nMessage-ID: <m1@example.org>\r\n"
    b"\r\nHello.\r\n"
)


async def submit(
    server: RunningServer, recipients: list[str], message: bytes = MESSAGE, **options: object
) -> None:
    def send() -> None:
        with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=server.client_tls) as client:
            client.login("alice@example.org", PASSWORD)
            client.sendmail("alice@example.org", recipients, message, **options)  # type: ignore[arg-type]

    await asyncio.to_thread(send)


async def settle(server: RunningServer) -> None:
    """Run queue passes until nothing due is left for now."""
    worker = server.services.queue
    assert worker is not None
    for _ in range(500):
        if worker.busy:  # the server's own worker may be on it already
            await asyncio.sleep(0.01)
            continue
        if not await worker.process_due() and not worker.busy:
            return
    raise AssertionError("the queue did not settle")


async def inbox(server: RunningServer, user: str = "alice") -> list[bytes]:
    store = server.store
    account = await store.get_account(f"{user}@example.org")
    assert account is not None
    box = await store.get_mailbox(account.id, "INBOX")
    return [
        await store.read_blob(r.blob_id, 0, r.size) for r in await store.load_messages(box.id, [(1, 1 << 30)])
    ]
