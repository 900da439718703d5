"""kill -9 of a real `kittiwake serve` while a message is in flight to the remote MX, then a restart:
the message is delivered after the restart, and leaves the queue; nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import ssl
import subprocess
import sys
from pathlib import Path

from tests.dns_server import dns_server
from tests.service.queue.sink import Sink, running_sinks
from tests.service.server_harness import free_ports

PASSWORD = "queue-crash-password"


def kittiwake(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kittiwake", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def configure(folder: Path, dns: str, sink_port: int) -> tuple[Path, int]:
    kittiwake("init", str(folder), "--domain", "example.org", "--hostname", "localhost", "--dev-ports")
    config = folder / "kittiwake.toml"
    (submission,) = free_ports(1)
    text = config.read_text()
    for name, port in (("smtp", 2525), ("submissions", 5465), ("imap", 1143), ("imaps", 1993)):
        text = text.replace(f'{name} = ["127.0.0.1:{port}"]', f"{name} = []")
    text = text.replace('submission = ["127.0.0.1:5587"]', f'submission = ["127.0.0.1:{submission}"]')
    text = text.replace('resolver = ""', f'resolver = "{dns}"')
    text = text.replace("remote_port = 25", f"remote_port = {sink_port}")
    text = text.replace(
        "retry_intervals = [60, 300, 900, 1800, 3600, 7200, 14400]", 'retry_intervals = ["1s"]'
    )
    config.write_text(text)
    kittiwake(
        "-c", str(config), "user", "add", "alice@example.org", "--password-stdin", stdin=PASSWORD + "\n"
    )
    return config, submission


async def start(config: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "kittiwake", "-c", str(config), "serve"]
    process = await asyncio.to_thread(subprocess.Popen, command, stderr=subprocess.PIPE)
    assert process.stderr is not None
    while True:
        line = await asyncio.to_thread(process.stderr.readline)
        assert line, "the server stopped before it was ready"
        if b" ready " in line:
            os.set_blocking(process.stderr.fileno(), False)
            return process


def submit(port: int) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the self-signed certificate `kittiwake init` made
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=context)
        client.login("alice@example.org", PASSWORD)
        client.sendmail("alice@example.org", ["bob@remote.test"], b"Subject: survive\r\n\r\nStill here.\r\n")


async def wait_for(predicate, seconds: float) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds * 20)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_message_in_flight_survives_kill_9_and_is_delivered_after_restart(tmp_path: Path) -> None:
    (sink_port,) = free_ports(1)
    zone = {("remote.test", "MX"): ["10 mx.remote.test."], ("mx.remote.test", "A"): ["127.0.0.2"]}
    async with dns_server(zone) as dns:
        config, submission = configure(tmp_path / "site", dns, sink_port)
        sink = Sink(behaviour="stall_after_data")
        async with running_sinks(sink_port, {"127.0.0.2": sink}):
            server = await start(config)
            try:
                await asyncio.to_thread(submit, submission)
                await wait_for(lambda: sink.stalled, 20)  # the body went out; the 250 never came back
            finally:
                server.send_signal(signal.SIGKILL)
                server.wait()
        assert sink.received == []
        sink = Sink()
        async with running_sinks(sink_port, {"127.0.0.2": sink}):
            server = await start(config)
            try:
                await wait_for(lambda: sink.received, 30)
            finally:
                server.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(server.wait, 30) == 0
    (got,) = sink.received
    assert got.recipients == ["bob@remote.test"] and got.data.endswith(
        b"Subject: survive\r\n\r\nStill here.\r\n"
    )
    listing = kittiwake("-c", str(config), "queue", "list").stdout
    assert "the queue is empty" in listing
