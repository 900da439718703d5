"""Outbound throughput: how fast kittiwake and a private Postfix drain a full queue to a remote SMTP server.

Both servers relay N messages (5 KB, then 100 KB) for recipients at remote.test to the same destination, an
asyncio SMTP sink on 127.0.0.2 (outbound_sink.py) that accepts everything and stores nothing. kittiwake
gets the mail on its submission port (STARTTLS, AUTH) and finds the sink through remote.test's MX on a DNS
server run by this bench; Postfix gets it on its smtpd and sends it through `relayhost = [127.0.0.2]:port`,
without DNS.

Method, the same for both: the queue is filled while the sink is down, so every message's first attempt
fails to connect and leaves it deferred (kittiwake's retry interval is set to an hour so nothing retries on
its own). Once all N are deferred, the sink starts and the queue is flushed with each server's own command
(`kittiwake queue flush`, `postqueue -f`). The rate is (N - 1) / (time of the last arrival at the sink - time
of the first): queue throughput alone, without acceptance, and without the time a server takes to notice the
flush (kittiwake looks for commands' commits every second, Postfix reacts to a trigger), shown apart as "start".
A drain where no message arrives for 20 s stops there, and its row says how many of the N came.
Each server may open the same number of concurrent connections to the destination (--connections; Postfix's
default of 20). Both reuse a connection for the next message to a busy destination (Postfix's connection
cache; kittiwake's `[queue] connection_cache_time`, 2 s by default).

The servers run at once, each round against each in turn; with --repeat N the best of N rounds is kept.
--profile FILE also records kittiwake with py-spy during one more drain, not counted in the table: of 5 KB
messages, or of the size given by --profile-size (in KiB).

    python bench/outbound.py                # 2000 x 5 KB and 2000 x 100 KB
    python bench/outbound.py --quick        # 300 x 5 KB and 100 x 100 KB
    python bench/outbound.py --profile /tmp/outbound.collapsed
    python bench/outbound.py --small 2 --large 3000 --profile /tmp/o.collapsed --profile-size 100
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from outbound_inject import Injection, inject
from outbound_servers import SINK_HOST, DnsThread, OutboundKittiwake, OutboundPostfix, Sink
from smtp_procfs import tree_cpu_seconds
from smtp_profile import SAMPLE_RATE, py_spy, render, summarise
from smtp_targets import Unavailable

RECIPIENT = "rcpt@remote.test"
LOAD_TIMEOUT = 300.0
DRAIN_TIMEOUT = 300.0
REFERENCE_RATIO = 1.5


class Server(Protocol):
    name: str

    @property
    def pid(self) -> int: ...

    def deferred(self) -> int: ...

    def delivered(self) -> int: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain:
    count: int
    arrived: int
    rate: float
    span: float
    start: float
    # CPU seconds per second while messages arrive: a sink near 1.0 would be what limits the rate, and a
    # server near 1.0 is bound by its one Python thread at a time.
    sink_load: float
    server_load: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    sizes: list[tuple[int, int]]
    connections: int
    repeat: int
    profile: Path | None
    profile_size: int = 5 * 1024


class RoundFailed(Exception):
    """A round did not load or drain within its time limit; the message says where it stopped."""


def free_sink_port() -> int:
    with socket.socket() as probe:
        probe.bind((SINK_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RoundFailed(f"{what} within {timeout:.0f}s")
        time.sleep(0.1)


def load(server: Server, port: int, size: int, count: int, first: int) -> None:
    """Fill the queue while the sink is down and wait until every message has had its failed attempt."""
    before = server.deferred() if isinstance(server, OutboundKittiwake) else 0
    spec = Injection(
        port=port,
        count=count,
        size=size,
        recipient=RECIPIENT,
        submission=isinstance(server, OutboundKittiwake),
    )
    asyncio.run(asyncio.wait_for(inject(spec, first), LOAD_TIMEOUT))
    wait_until(lambda: server.deferred() - before >= count, LOAD_TIMEOUT, f"{server.name}: not all deferred")


def drain(server: Server, sink_port: int, count: int) -> Drain:
    """Start the sink, flush the queue, and time the arrivals."""
    delivered = server.delivered()
    with Sink(sink_port) as sink:
        flushed = time.perf_counter()
        server.flush()
        # CPU is counted from the first arrival: before it, the sink only waits and the server only starts.
        sink.wait_for(1, DRAIN_TIMEOUT)
        cpu_from = (time.perf_counter(), tree_cpu_seconds(server.pid), sink.cpu_seconds())
        arrived = sink.wait_for(count, DRAIN_TIMEOUT)
        seconds = max(1e-9, time.perf_counter() - cpu_from[0])
        server_load = (tree_cpu_seconds(server.pid) - cpu_from[1]) / seconds
        sink_load = (sink.cpu_seconds() - cpu_from[2]) / seconds
        if arrived < 2:
            raise RoundFailed(f"{server.name}: {arrived} of {count} arrived in {DRAIN_TIMEOUT:.0f}s")
        # The server records each outcome after the sink's 250; the next round starts from an empty queue.
        wait_until(
            lambda: server.delivered() - delivered >= arrived, 60, f"{server.name}: outcomes not recorded"
        )
    first, last = sink.arrivals[0], sink.arrivals[arrived - 1]
    span = last - first
    rate = (arrived - 1) / span if span > 0 else 0.0
    return Drain(
        count=count,
        arrived=arrived,
        rate=rate,
        span=span,
        start=first - flushed,
        sink_load=sink_load,
        server_load=server_load,
    )


class PySpy:
    """py-spy recording a process from entry to exit; SIGINT makes it write what it has."""

    def __init__(self, pid: int, output: Path) -> None:
        self.pid = pid
        self.output = output
        self.seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0

    def __enter__(self) -> PySpy:
        binary = py_spy()
        if binary is None:
            raise Unavailable("py-spy is not installed and `pip install py-spy` failed")
        command = [binary, "record", "--pid", str(self.pid), "--format", "raw", "--rate", str(SAMPLE_RATE)]
        command += ["--nonblocking", "--output", str(self.output)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attaching takes a moment; the flush waits for it
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exception: object) -> None:
        self.seconds = time.perf_counter() - self._started
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def run_rounds(
    servers: dict[str, Server], ports: dict[str, int], sink_port: int, plan: Plan
) -> Iterator[str]:
    """The table's lines, each row as soon as its size is measured."""
    yield (
        f"{'size':>7} {'messages':>8} {'kittiwake msg/s':>16} {'Postfix msg/s':>14} {'ratio':>6}"
        f"   (start: flush to first arrival, s; CPU: cores busy in the server / in the sink)"
    )
    number = 0
    for size, count in plan.sizes:
        best: dict[str, Drain | str] = {}
        for _ in range(plan.repeat):
            for name, server in servers.items():
                try:
                    load(server, ports[name], size, count, number)
                    number += count
                    result = drain(server, sink_port, count)
                except (RoundFailed, TimeoutError, OSError) as error:
                    best.setdefault(name, f"failed: {error}")
                    continue
                previous = best.get(name)
                if not isinstance(previous, Drain) or result.rate > previous.rate:
                    best[name] = result
        yield row(size, count, best)


def row(size: int, count: int, best: dict[str, Drain | str]) -> str:
    kittiwake, postfix = best.get("kittiwake", "unavailable"), best.get("postfix", "unavailable")
    ratio = (
        f"{kittiwake.rate / postfix.rate:5.2f}x"
        if isinstance(kittiwake, Drain) and isinstance(postfix, Drain) and complete(kittiwake, postfix)
        else "-"
    )
    cells = [f"{d.rate:16.0f}" if isinstance(d, Drain) else f"{'-':>16}" for d in (kittiwake, postfix)]
    starts = ", ".join(
        f"{name} {d.start:.1f}, CPU {d.server_load:.2f}/{d.sink_load:.2f}{missing(d)}"
        if isinstance(d, Drain)
        else f"{name} {d}"
        for name, d in best.items()
    )
    return f"{size // 1024:>5} KB {count:>8} {cells[0]} {cells[1][2:]} {ratio:>6}   ({starts})"


def complete(*drains: Drain) -> bool:
    """Rates compare only when every message of both drains came: a stalled drain's rate says little."""
    return all(d.arrived == d.count and d.rate > 0 for d in drains)


def missing(drain: Drain) -> str:
    """A drain that stopped short: the rate is of the messages that came, the rest are still queued."""
    return "" if drain.arrived == drain.count else f"; only {drain.arrived} of {drain.count} arrived"


def profile(server: OutboundKittiwake, sink_port: int, plan: Plan, output: Path) -> list[str]:
    size, count = next((s, n) for s, n in plan.sizes if s == plan.profile_size)
    load(server, server.submission_port, size, count, 10_000_000)
    spy = PySpy(server.pid, output)
    with Sink(sink_port) as sink, spy:
        server.flush()
        sink.wait_for(count, DRAIN_TIMEOUT)
    title = f"py-spy of kittiwake draining {count} x {size // 1024} KB, collapsed stacks in {output}"
    return [title, *render(summarise(output, spy.seconds))]


def start_servers(
    workdir: Path, stack: ExitStack, sink_port: int, dns: str, plan: Plan
) -> tuple[dict[str, Server], dict[str, int], list[str]]:
    servers: dict[str, Server] = {}
    ports: dict[str, int] = {}
    notes: list[str] = []
    kittiwake = OutboundKittiwake(workdir, sink_port=sink_port, dns=dns, connections=plan.connections)
    postfix = OutboundPostfix(workdir, sink_port=sink_port, connections=plan.connections)
    for target, port in ((kittiwake, kittiwake.submission_port), (postfix, postfix.port)):
        try:
            stack.enter_context(target)
        except Unavailable as error:
            notes.append(f"{target.name} unavailable: {error}")
            continue
        servers[target.name] = target
        ports[target.name] = port
    return servers, ports, notes


def parse_args(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 x 5 KB and 100 x 100 KB")
    parser.add_argument("--small", type=int, help="how many 5 KB messages (default 2000)")
    parser.add_argument("--large", type=int, help="how many 100 KB messages (default 2000)")
    parser.add_argument("--connections", type=int, default=20, help="concurrent connections to the sink")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size; the best is kept")
    parser.add_argument("--profile", type=Path, help="py-spy kittiwake during one more drain")
    parser.add_argument(
        "--profile-size", type=int, choices=(5, 100), default=5, help="KiB per message in the profiled drain"
    )
    args = parser.parse_args(argv)
    small = args.small or (300 if args.quick else 2000)
    large = args.large or (100 if args.quick else 2000)
    if min(small, large) < 2:
        parser.error("at least 2 messages per size: the rate is timed between the first and the last")
    counts = [(5 * 1024, min(small, 20_000)), (100 * 1024, min(large, 5_000))]
    return Plan(
        sizes=counts,
        connections=args.connections,
        repeat=max(1, args.repeat),
        profile=args.profile,
        profile_size=args.profile_size * 1024,
    )


def stop_on_sigterm(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    plan = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Also when started from a shell that ignores SIGINT in background jobs: Ctrl-C must reach the cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kittiwake-outbound-")))
            sink_port = free_sink_port()
            dns = stack.enter_context(DnsThread())
            servers, ports, notes = start_servers(workdir, stack, sink_port, dns.address, plan)
            print(
                f"sink: outbound_sink.py on {SINK_HOST}:{sink_port}; {plan.connections} connections per server"
            )
            for line in itertools.chain(notes, run_rounds(servers, ports, sink_port, plan)):
                print(line, flush=True)
            print(f"reference: kittiwake >= {REFERENCE_RATIO}x Postfix")
            kittiwake = servers.get("kittiwake")
            if plan.profile is not None and isinstance(kittiwake, OutboundKittiwake):
                for line in profile(kittiwake, sink_port, plan, plan.profile):
                    print(line)
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temp files removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
