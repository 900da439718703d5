"""kill -9 in the middle of deliveries: everything acknowledged survives, byte for byte, and verify is clean."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kittiwake.store.sqlite import SqliteStore

WRITER = Path(__file__).with_name("crash_writer.py")


def run_and_kill(data_dir: Path, seed: int, run_for: float) -> dict[int, str]:
    """Start the writer, let it deliver for a while, SIGKILL it; returns the deliveries it acknowledged."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(seed)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    os.set_blocking(process.stdout.fileno(), False)
    time.sleep(run_for)
    process.send_signal(signal.SIGKILL)
    process.wait()
    os.set_blocking(process.stdout.fileno(), True)
    acknowledged = {}
    for line in process.stdout.read().splitlines():
        parts = line.split()
        if len(parts) == 2:  # a line cut by the kill was never a complete acknowledgement
            acknowledged[int(parts[0])] = parts[1]
    process.stdout.close()
    return acknowledged


async def test_acknowledged_deliveries_survive_repeated_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acknowledged: dict[int, str] = {}
    for round_number, run_for in enumerate((0.4, 0.9, 0.25, 1.3, 0.6)):
        acknowledged.update(run_and_kill(data_dir, round_number, run_for))
        store = await SqliteStore.open(data_dir, inline_max=4096)
        try:
            account = await store.get_account("crash@example.org")
            assert account is not None
            inbox = await store.get_mailbox(account.id, "INBOX")
            records = {r.uid: r for r in await store.load_messages(inbox.id, [(1, 1 << 40)])}
            missing = [uid for uid in acknowledged if uid not in records]
            assert missing == [], f"round {round_number}: acknowledged deliveries lost"
            for uid, digest in acknowledged.items():
                data = await store.read_blob(records[uid].blob_id, 0, records[uid].size)
                assert hashlib.sha256(data).hexdigest() == digest, f"message {uid} changed"
            assert await store.verify() == []
            assert list(store.files.tmp.iterdir()) == []
        finally:
            await store.close()
    assert len(acknowledged) > 100
