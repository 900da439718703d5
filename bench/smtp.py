"""Durable SMTP acceptance: kittiwake against a private Postfix and aiosmtpd, same workload, same run.

A message counts as accepted when the 250 after its DATA arrives, and every server under test sends that 250
only once the message is on disk: kittiwake after its SQLite commit, Postfix after cleanup fsyncs the queue
file, aiosmtpd (with the handler in smtp_aiosmtpd.py) after fsync of one file per message. The load runs in a
separate process (smtp_load.py, asyncio streams, PIPELINING when offered), all on 127.0.0.1.

Measured for each server:
  - messages/s for each message size and number of concurrent sessions, with a new connection per message
    and with reused connections (several MAIL/RCPT/DATA transactions per connection, no RSET);
  - p50/p99 latency (last body byte sent -> 250) at 10 sessions on reused connections;
  - RSS growth of the server (summed over its processes, sampled every 5 ms) while it receives one big
    message, and VmHWM growth of the server process where the server is a single process.
Then a table with the ratios kittiwake/Postfix and kittiwake/aiosmtpd. A server that cannot run here is shown
as unavailable, with the reason. Postfix's smtp-sink, which stores nothing, runs the same load as a fourth
column: its rate is the ceiling of the load generator on this machine, showing the generator is not what
limits the others.

All servers run at once and each cell is run against each server in turn, so other work on the machine hits
them alike; with --repeat N the best of N rounds is kept. CPU is shown per cell for the server's process
tree and for the load generator, in % of one core; the machine has os.cpu_count() cores in all.

    python bench/smtp.py                 # full matrix, 3 s per cell
    python bench/smtp.py --quick         # reduced matrix for a smoke run
    python bench/smtp.py --profile /tmp/kittiwake.collapsed   # also py-spy a 10-session 5 KB load (--profile-size)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from smtp_postfix import PostfixTarget
from smtp_procfs import RssSampler, hwm_kib, machine_busy_seconds, tree_cpu_seconds
from smtp_profile import duration, record, render, summarise
from smtp_results import (
    LATENCY_SESSIONS,
    REFERENCE,
    Cell,
    Memory,
    Outcome,
    Report,
    print_cpu,
    print_latency,
    print_memory,
    print_notes,
    print_rates,
)
from smtp_targets import BENCH, AiosmtpdTarget, KittiwakeTarget, ProcessTarget, SinkTarget, Unavailable

SERVERS: dict[str, type[ProcessTarget]] = {
    "kittiwake": KittiwakeTarget,
    "postfix": PostfixTarget,
    "aiosmtpd": AiosmtpdTarget,
    "sink": SinkTarget,
}
LOAD_GRACE = 180.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    cells: list[Cell]
    seconds: float
    max_messages: int
    big_size: int
    profile: Path | None
    profile_size: int
    repeat: int
    kittiwake_environment: dict[str, str] | None


def run_load(target: ProcessTarget, cell: Cell, seconds: float, max_messages: int) -> Outcome:
    """One load-generator process against the server; its JSON line becomes an Outcome.

    The server's CPU is that of its process tree, children it reaped meanwhile included; the server is idle
    while the load generator starts, so only the load shows up in it.
    """
    server_before = tree_cpu_seconds(target.pid)
    out, err, status = load_process(target.port, cell, seconds, max_messages)
    server_cpu = tree_cpu_seconds(target.pid) - server_before
    if status != 0:
        text = err.decode(errors="replace").strip().splitlines()
        return Outcome(
            rate=0,
            accepted=0,
            problems=1,
            p50=0,
            p99=0,
            seconds=0,
            server_cpu=0,
            load_cpu=0,
            note=" ".join(text[-1:]),
        )
    result = json.loads(out)
    elapsed = max(result["elapsed"], 1e-9)
    return Outcome(
        rate=result["rate"],
        accepted=result["accepted"],
        problems=result["rejected"] + result["errors"],
        p50=result["p50"],
        p99=result["p99"],
        seconds=result["elapsed"],
        server_cpu=server_cpu / elapsed,
        load_cpu=result["load_cpu"] / elapsed,
        note=result["last_error"],
        pipelining=result["pipelining"],
    )


def load_process(port: int, cell: Cell, seconds: float, max_messages: int) -> tuple[bytes, bytes, int]:
    """Run smtp_load.py in its own process group; killed if the bench is interrupted or it overruns."""
    command = [sys.executable, str(BENCH / "smtp_load.py"), "--port", str(port), "--size", str(cell.size)]
    command += ["--sessions", str(cell.sessions), "--per-connection", str(cell.per_connection)]
    command += ["--seconds", str(seconds), "--max-messages", str(max_messages)]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = load.communicate(timeout=seconds + LOAD_GRACE)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    return out, err, load.returncode


def measure_memory(target: ProcessTarget, size: int) -> Memory:
    """One message of `size` bytes into a server that has just started, so VmHWM starts from its idle peak."""
    hwm_before = hwm_kib(target.pid)
    with RssSampler(target.pid) as peak:
        outcome = run_load(target, Cell(size=size, sessions=1, per_connection=1), 60.0, 1)
    hwm_growth = hwm_kib(target.pid) - hwm_before if target.single_process else None
    return Memory(rss_growth_kib=peak.growth_kib, hwm_growth_kib=hwm_growth, outcome=outcome)


def start_all(names: list[str], workdir: Path, stack: ExitStack, plan: Plan) -> dict[str, Report]:
    """Start every server; each gets its big message right away, while its VmHWM is still its idle peak."""
    reports: dict[str, Report] = {}
    for name in names:
        report = reports[name] = Report(name)
        try:
            environment = plan.kittiwake_environment if name == "kittiwake" else None
            report.target = stack.enter_context(SERVERS[name](workdir, environment))
        except Unavailable as error:
            report.unavailable = str(error)
            print(f"  {name}: unavailable: {error}")
            continue
        if name != REFERENCE:
            report.memory = measure_memory(report.target, plan.big_size)
            report.target.settle()
        run_load(report.target, Cell(size=5 * 1024, sessions=10, per_connection=20), 1.0, 2000)
        report.target.settle()
    return reports


def measure(reports: dict[str, Report], plan: Plan) -> None:
    """Every cell against every server in turn, so load from elsewhere on the machine hits all of them alike.

    With repeats, the best rate of a cell is kept: interference only ever makes a run slower.
    """
    for round_number in range(plan.repeat):
        for cell in plan.cells:
            for report in reports.values():
                if report.target is None:
                    continue
                print(f"  {round_number + 1}  {report.name:<10}{cell.label}", end="", flush=True)
                outcome = run_load(report.target, cell, plan.seconds, plan.max_messages)
                print(
                    f"  {outcome.rate:9.1f} msg/s  ({outcome.accepted} in {outcome.seconds:.1f}s;"
                    f" CPU server {outcome.server_cpu:.0%}, load {outcome.load_cpu:.0%})"
                )
                best = report.outcomes.get(cell)
                if best is None or outcome.rate > best.rate:
                    report.outcomes[cell] = outcome
                report.target.settle()


def profile(target: ProcessTarget, plan: Plan) -> list[str]:
    """py-spy on the server during an extra 10-session run on reused connections, not one of the measured."""
    assert plan.profile is not None
    cell = Cell(size=plan.profile_size, sessions=LATENCY_SESSIONS, per_connection=20)
    seconds = max(plan.seconds, 5.0) + 2
    failure = record(
        target.pid, plan.profile, seconds, lambda: run_load(target, cell, seconds, plan.max_messages)
    )
    if failure is not None:
        return [failure]
    summary = summarise(plan.profile, duration(seconds))
    return [
        f"py-spy of kittiwake, {cell.label.strip()}, collapsed stacks in {plan.profile}",
        *render(summary),
    ]


def filesystem_of(path: Path) -> str:
    """The mount that holds the path: fsync on tmpfs proves nothing, so the table says where files went."""
    best = ("", "?")
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, point, kind, *_ = line.split()
            if str(path).startswith(point) and len(point) > len(best[0]):
                best = (point, kind)
    return f"{best[1]} mounted at {best[0]}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="load time per cell (default 3)")
    parser.add_argument(
        "--max-messages", type=int, default=20000, help="message cap per cell (default 20000)"
    )
    parser.add_argument(
        "--sizes", default="5,100", help="message sizes in KiB, comma-separated (default 5,100)"
    )
    parser.add_argument("--sessions", default="1,10,50", help="concurrent sessions, comma-separated")
    parser.add_argument("--per-connection", type=int, default=20, help="messages per reused connection")
    parser.add_argument("--big-mb", type=int, default=50, help="size of the memory-test message in MiB")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the matrix; the best is kept")
    parser.add_argument("--servers", default=",".join(SERVERS), help="which servers, comma-separated")
    parser.add_argument("--profile", type=Path, help="py-spy kittiwake under 10 sessions into this file")
    parser.add_argument(
        "--profile-size", type=int, default=5, help="message size in KiB of the profiled load (default 5)"
    )
    parser.add_argument(
        "--kittiwake-src",
        type=Path,
        help="run kittiwake from this src directory (say, a `git archive` of a commit) instead of the installed one",
    )
    parser.add_argument(
        "--dir", type=Path, help="where the temp dir goes (default $BENCH_DIR or the system's)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 and 10 sessions, 1 s, 5 MiB message"
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    sessions = [1, 10] if args.quick else [int(part) for part in args.sessions.split(",")]
    sizes = [int(part) * 1024 for part in args.sizes.split(",")]
    cells = [
        Cell(size=size, sessions=count, per_connection=per)
        for size in sizes
        for per in (1, args.per_connection)
        for count in sessions
    ]
    return Plan(
        cells=cells,
        seconds=1.0 if args.quick else args.seconds,
        max_messages=args.max_messages,
        big_size=(5 if args.quick else args.big_mb) * 2**20,
        profile=args.profile,
        profile_size=args.profile_size * 1024,
        repeat=args.repeat,
        kittiwake_environment=source_environment(args.kittiwake_src),
    )


def source_environment(source: Path | None) -> dict[str, str] | None:
    """Environment that makes `python -m kittiwake` import from the given source tree first."""
    if source is None:
        return None
    paths = [str(source.resolve()), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}


def background_load(seconds: float = 1.0) -> float:
    """CPU in use while the bench is idle: other work on the machine makes every number below lower."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def stop_on_sigterm(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    names = [name for name in args.servers.split(",") if name]
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Also when started from a shell that ignores SIGINT in background jobs: Ctrl-C must reach the cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    base = args.dir or os.environ.get("BENCH_DIR")
    with tempfile.TemporaryDirectory(prefix="smtp-bench-", dir=base, ignore_cleanup_errors=True) as folder:
        workdir = Path(folder)
        print(
            f"{os.cpu_count()} CPUs; files on {filesystem_of(workdir.resolve())}; {plan.seconds:g} s per cell;"
            f" busy before the run, from elsewhere: {background_load():.0%} of a core"
        )
        started = time.monotonic()
        try:
            with ExitStack() as servers:
                reports = start_all(names, workdir, servers, plan)
                measure(reports, plan)
                kittiwake = reports.get("kittiwake")
                if plan.profile is not None and kittiwake is not None and kittiwake.target is not None:
                    kittiwake.profile = profile(kittiwake.target, plan)
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped and temp files removed")
            return 130
        print(f"\nran in {time.monotonic() - started:.0f} s; '!' marks a cell where some sessions failed")
        print_rates(reports, plan.cells)
        print_latency(reports, plan.cells)
        print_cpu(reports, plan.cells)
        print_memory(reports, plan.big_size)
        print()
        print_notes(reports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
