"""The pieces of the outbound benchmark: a DNS server, the sink both servers relay to, and the two servers.

Both servers deliver to the same destination, the sink of outbound_sink.py on 127.0.0.2: kittiwake finds it
through the MX of remote.test on a DNS server running in this process, Postfix through `relayhost`. The sink
prints a running count of messages and flushes it after each one, so reading its output tells when each
message arrived. Each server offers the same number of concurrent connections to that destination.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dns_server import dns_server

from smtp_postfix import QUEUES, PostfixTarget
from smtp_procfs import tree_cpu_seconds
from smtp_targets import BENCH, KittiwakeTarget, Unavailable, free_port, stop_group, wait_for_banner

SINK_HOST = "127.0.0.2"
REMOTE_DOMAIN = "remote.test"
ZONE = {
    (REMOTE_DOMAIN, "MX"): ["10 mx.remote.test."],
    ("mx.remote.test", "A"): [SINK_HOST],
}
COUNTER = re.compile(rb"mesg=(\d+)")
# Long enough that a message deferred while the sink is down waits for the flush, not for a retry timer.
RETRY_INTERVAL = 3600


class DnsThread:
    """The DNS server of tests/dns_server.py on an event loop of its own, in a daemon thread."""

    def __init__(self) -> None:
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(),), daemon=True
        )

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with dns_server(ZONE) as address:
            self.address = address
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> DnsThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise Unavailable("the DNS server did not start")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


class Sink:
    """outbound_sink.py on SINK_HOST:port; a reader thread stamps the moment each message's count appears."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivals: list[float] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Sink:
        command = [
            sys.executable,
            str(BENCH / "outbound_sink.py"),
            "--host",
            SINK_HOST,
            "--port",
            str(self.port),
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, start_new_session=True)
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()
        wait_for_sink(self.port, self._process)
        return self

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        seen = 0
        while chunk := os.read(process.stdout.fileno(), 65536):
            now = time.perf_counter()
            counts = COUNTER.findall(chunk)
            if counts:
                latest = int(counts[-1])
                self.arrivals += [now] * (latest - seen)
                seen = max(seen, latest)

    def cpu_seconds(self) -> float:
        """CPU the sink has used since it started: near one second per second, the sink sets the pace."""
        return tree_cpu_seconds(self._process.pid) if self._process is not None else 0.0

    def wait_for(self, count: int, timeout: float, idle: float = 20.0) -> int:
        """Until `count` messages arrived, none arrived for `idle` seconds, or `timeout` passed; how many came."""
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            if self.arrivals and time.perf_counter() - self.arrivals[-1] > idle:
                break
            time.sleep(0.05)
        return min(count, len(self.arrivals))

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            stop_group(self._process)
            self._process = None
        if self._reader is not None:
            self._reader.join(5)


def wait_for_sink(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"the sink exited with status {process.returncode}")
        try:
            socket.create_connection((SINK_HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Unavailable(f"the sink did not listen on {SINK_HOST}:{port}")


class OutboundKittiwake(KittiwakeTarget):
    """kittiwake taking mail on submission and sending it to remote.test's MX, the sink."""

    name = "kittiwake"

    def __init__(self, workdir: Path, *, sink_port: int, dns: str, connections: int) -> None:
        super().__init__(workdir)
        self.sink_port = sink_port
        self.dns = dns
        self.connections = connections
        self.submission_port = free_port()

    def configure(self, text: str) -> str:
        text = super().configure(text)
        replacements = {
            "submission": f'["127.0.0.1:{self.submission_port}"]',
            "resolver": f'"{self.dns}"',
            "remote_port": str(self.sink_port),
            "retry_intervals": f"[{RETRY_INTERVAL}]",
            "max_per_destination": str(self.connections),
        }
        for key, value in replacements.items():
            text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        return text

    def __enter__(self) -> OutboundKittiwake:
        super().__enter__()
        wait_for_banner(self.submission_port, 10)
        return self

    def deferred(self) -> int:
        """Attempts that ended deferred so far, from the log (one line per recipient and attempt)."""
        return self.log_path.read_bytes().count(b" result=deferred ")

    def delivered(self) -> int:
        return self.log_path.read_bytes().count(b" result=delivered ")

    def flush(self) -> None:
        self._cli("queue", "flush")


POSTFIX_TRANSPORTS = """\
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
"""


class OutboundPostfix(PostfixTarget):
    """Postfix relaying everything for other domains to the sink through `relayhost`, so without DNS."""

    def __init__(self, workdir: Path, *, sink_port: int, connections: int) -> None:
        super().__init__(workdir)
        self.sink_port = sink_port
        self.connections = connections

    def prepare(self) -> None:
        super().prepare()
        with open(self.root / "etc" / "master.cf", "a") as master:
            master.write(POSTFIX_TRANSPORTS)
        settings = {
            "relayhost": f"[{SINK_HOST}]:{self.sink_port}",
            "smtp_destination_concurrency_limit": str(self.connections),
            "default_process_limit": str(max(100, 2 * self.connections)),
        }
        with open(self.root / "etc" / "main.cf", "a") as main:
            main.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def queue_files(self, queue: str) -> int:
        return sum(len(files) for _, _, files in os.walk(self.root / "queue" / queue))

    def deferred(self) -> int:
        """Messages in the deferred queue once nothing else is queued; 0 while some are still moving."""
        moving = sum(self.queue_files(queue) for queue in QUEUES if queue != "deferred")
        return 0 if moving else self.queue_files("deferred")

    def delivered(self) -> int:
        try:
            return (self.root / "maillog").read_bytes().count(b" status=sent ")
        except FileNotFoundError:
            return 0

    def flush(self) -> None:
        subprocess.run(
            ["/usr/sbin/postqueue", "-c", str(self.root / "etc"), "-f"],
            capture_output=True,
            timeout=60,
            check=True,
        )
