"""Delivers messages in a loop and prints each one that returned; the crash test SIGKILLs it at random.

Run as: python crash_writer.py DATA_DIR SEED
Each line printed is "uid sha256" for a delivery whose call returned (so it must survive the kill).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
from pathlib import Path

from kittiwake.store.models import IncomingMessage
from kittiwake.store.sqlite import SqliteStore


async def main(data_dir: Path, seed: int) -> None:
    store = await SqliteStore.open(data_dir, inline_max=4096)
    account = await store.get_account("crash@example.org")
    if account is None:
        await store.add_domain("example.org")
        account = await store.add_account("crash@example.org", "h")
    inbox = await store.get_mailbox(account.id, "INBOX")
    rng = random.Random(seed)
    print("ready", flush=True)

    async def writer(worker: int) -> None:
        for n in range(1_000_000):
            size = rng.choice((200, 3000, 9000, 70000))  # both inline and file-backed messages
            body = f"Subject: {seed}-{worker}-{n}\r\n\r\n".encode() + rng.randbytes(size)
            if rng.random() < 0.5:
                blob = await store.save_blob(body)
            else:
                path = store.new_spool_path()
                await asyncio.to_thread(path.write_bytes, body)
                blob = await store.adopt_blob_file(path, len(body))
            message = IncomingMessage(blob=blob, size=len(body), internal_date=0, structure=b"[]")
            (added,) = await store.deliver(message, [inbox.id])
            sys.stdout.write(f"{added.uid} {hashlib.sha256(body).hexdigest()}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(i) for i in range(8)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
