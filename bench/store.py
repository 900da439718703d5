"""Deliveries per second into the store, fsync on: 5 KB and 100 KB messages, 1 and 50 concurrent writers.

Each delivery is what SMTP does after DATA: make the bytes durable, then commit the message row, and only then
return. Two layouts are measured so the default can be justified: bytes inside SQLite (one WAL fsync per group
of deliveries) and every message in its own fsync'd file.

    python bench/store.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from kittiwake.store.models import IncomingMessage
from kittiwake.store.sqlite import SqliteStore


async def measure(size: int, writers: int, seconds: float, inline_max: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as folder:
        store = await SqliteStore.open(Path(folder), inline_max=inline_max)
        await store.add_domain("example.org")
        account = await store.add_account("bench@example.org", "h")
        inbox = await store.get_mailbox(account.id, "INBOX")
        body = b"Subject: bench\r\n\r\n" + b"x" * (size - 18)
        count = 0
        deadline = time.perf_counter() + seconds

        async def writer() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                if size <= inline_max:
                    blob = await store.save_blob(body)
                else:
                    path = store.new_spool_path()
                    await asyncio.to_thread(path.write_bytes, body)
                    blob = await store.adopt_blob_file(path, size)
                message = IncomingMessage(blob=blob, size=size, internal_date=0, structure=b"[]")
                await store.deliver(message, [inbox.id])
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        elapsed = time.perf_counter() - start
        groups, operations = store.writer_stats
        await store.close()
        return count / elapsed, operations / max(groups, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"{'layout':<18}{'size':>8}{'writers':>9}{'deliveries/s':>14}{'per commit':>12}")
    for layout, inline_max in (("inside SQLite", 1 << 20), ("file per message", 0)):
        for size in (5 * 1024, 100 * 1024):
            for writers in (1, 50):
                rate, group = asyncio.run(measure(size, writers, args.seconds, inline_max))
                print(f"{layout:<18}{size // 1024:>6}KB{writers:>9}{rate:>14.0f}{group:>12.1f}")


if __name__ == "__main__":
    main()
