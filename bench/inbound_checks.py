"""What port 25's checks cost: messages/s accepted with SPF, DKIM, ARC, DMARC and reverse DNS on, then off.

A real `kittiwake serve` receives DKIM-signed 5 KB messages from a sender whose SPF, DKIM key and DMARC
policy are published by a DNS server on loopback (answered locally, as a caching resolver would), over
10 and then 50 concurrent sessions that each reuse their connection, with the checks off, in their helper
process (the default) and in the server's own process (`verify_processes = 0`). Target: the checks cost at
most 25% of acceptance.

    python bench/inbound_checks.py [--seconds 5] [--sessions 10,50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.dns_server import dns_server

from kittiwake.mailauth.dkim import public_key_record, sign_message


def signed_message(key: bytes, size: int) -> bytes:
    body = b"".join(
        b"line %05d of the quarterly report, padded to a realistic width....\r\n" % i
        for i in range(size // 72)
    )
    message = (
        b"From: reports@sender.test\r\nTo: bench@example.org\r\nSubject: quarterly\r\n"
        b"Message-ID: <bench@sender.test>\r\nDate: Sun, 22 Nov 2026 04:00:00 +0000\r\n\r\n" + body
    )
    return sign_message(message, domain="sender.test", selector="sel", private_key_pem=key) + message


def zone(key: bytes) -> dict[tuple[str, str], list[str]]:
    record = public_key_record(key)
    chunks = " ".join(f'"{record[i : i + 200]}"' for i in range(0, len(record), 200))
    return {
        ("sender.test", "TXT"): ['"v=spf1 ip4:127.0.0.1 -all"'],
        ("_dmarc.sender.test", "TXT"): ['"v=DMARC1; p=reject"'],
        ("sel._domainkey.sender.test", "TXT"): [chunks],
        ("1.0.0.127.in-addr.arpa", "PTR"): ["client.sender.test."],
        ("client.sender.test", "A"): ["127.0.0.1"],
    }


def configure(folder: Path, port: int, dns: str, verify: bool, processes: int) -> Path:
    subprocess.run(
        [sys.executable, "-m", "kittiwake", "init", str(folder), "--domain", "example.org", "--dev-ports"],
        check=True, capture_output=True,
    )  # fmt: skip
    config = folder / "kittiwake.toml"
    text = config.read_text()
    values = {
        "smtp": f'["127.0.0.1:{port}"]', "submission": "[]", "submissions": "[]", "imap": "[]", "imaps": "[]",
        "resolver": f'"{dns}"', "verify": "true" if verify else "false", "max_messages_per_minute": "0",
        "max_connections_per_minute": "0", "max_connections_per_ip": "1000",
        "verify_processes": str(processes),
    }  # fmt: skip
    for key, value in values.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    config.write_text(text)
    subprocess.run(
        [sys.executable, "-m", "kittiwake", "-c", str(config), "user", "add", "bench@example.org", "--password-stdin"],
        input=b"password123\n", check=True, capture_output=True,
    )  # fmt: skip
    return config


async def session(port: int, message: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"EHLO client.sender.test\r\n")
    while not (await reader.readline()).startswith(b"250 "):
        pass
    payload = message.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"
    while time.monotonic() < deadline:
        writer.write(b"MAIL FROM:<reports@sender.test>\r\nRCPT TO:<bench@example.org>\r\nDATA\r\n")
        replies = [await reader.readline() for _ in range(3)]
        if not replies[2].startswith(b"354"):
            raise RuntimeError(f"refused: {replies}")
        writer.write(payload)
        reply = await reader.readline()
        if not reply.startswith(b"250"):
            raise RuntimeError(f"refused: {reply!r}")
        counts[0] += 1
    writer.write(b"QUIT\r\n")
    writer.close()


async def measure(
    verify: bool, processes: int, seconds: float, sessions: int, message: bytes, dns: str
) -> float:
    with tempfile.TemporaryDirectory() as folder:
        port = 20000 + os.getpid() % 20000
        config = configure(Path(folder) / "site", port, dns, verify, processes)
        command = [sys.executable, "-m", "kittiwake", "-c", str(config), "serve"]
        server = await asyncio.create_subprocess_exec(*command, stderr=subprocess.PIPE)
        assert server.stderr is not None
        try:
            while b" ready " not in await server.stderr.readline():
                pass
            drain = asyncio.ensure_future(server.stderr.read())
            counts = [0]
            start = time.monotonic()
            await asyncio.gather(*(session(port, message, start + seconds, counts) for _ in range(sessions)))
            rate = counts[0] / (time.monotonic() - start)
        finally:
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGTERM)
            await server.wait()
        drain.cancel()
        return rate


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", default="10,50", help="comma-separated session counts")
    parser.add_argument("--size", type=int, default=5 * 1024)
    args = parser.parse_args()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    message = signed_message(key, args.size)
    print(f"{'port 25, 5 KB signed':<28}{'sessions':>9}{'messages/s':>12}{'cost':>7}   (target: at most 25%)")
    async with dns_server(zone(key)) as dns:
        for sessions in (int(n) for n in args.sessions.split(",")):
            off = await measure(False, 0, args.seconds, sessions, message, dns)
            print(f"{'checks off':<28}{sessions:>9}{off:>12.0f}")
            for label, processes in (("checks in a helper process", 1), ("checks in the server", 0)):
                on = await measure(True, processes, args.seconds, sessions, message, dns)
                print(f"{label:<28}{sessions:>9}{on:>12.0f}{(1 - on / off) * 100:>6.0f}%")


if __name__ == "__main__":
    asyncio.run(main())
