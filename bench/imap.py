"""IMAP: kittiwake against a private Dovecot, same mail, same client, same run, one server at a time.

Both servers listen on 127.0.0.1 with implicit TLS and the same self-signed certificate, and check LOGIN
against the same argon2id hash (kittiwake's default parameters: 64 MiB, 3 passes), so a login is the same
work for both. Both hold byte-identical messages: kittiwake's filled through its store API, Dovecot's written
as Maildir files and indexed by a warm-up SELECT before anything is measured. The client (imap_load.py, asyncio
streams) runs in its own process.

Measured:
  (a) commands/s of 10 concurrent clients looping LIST, STATUS, SELECT, FETCH headers+flags of 10 messages,
      FETCH one full body, STORE a flag, STORE \\Deleted + EXPUNGE, APPEND: once with LOGIN/LOGOUT around
      every loop (as imaptest does; argon2 then dominates), once with one LOGIN per client done before
      the clock starts;
  (b) server memory per connection: N connections that LOGIN, SELECT INBOX and IDLE; RSS growth / N
      (kittiwake: its process's VmRSS; Dovecot: the sum over all its processes, and the PSS sum, which
      counts pages shared between its processes once);
  (c) on a 100,000-message INBOX: client-side time of SELECT and of UID FETCH 1:* (FLAGS), median of 3
      runs after one warm-up run.

    python bench/imap.py                        # full run (about 6 minutes on 2 cores)
    python bench/imap.py --quick                # reduced run (about 1 minute)
    python bench/imap.py --profile /tmp/prof    # also py-spy kittiwake during (a) and (c)
    python bench/imap.py --connections 1000,10000   # (b) at 10,000 too: Dovecot's argon2 logins take ~30 min
    python bench/imap.py --only-kittiwake --connections 10000   # kittiwake alone (its logins are cached)
    python bench/imap.py --dovecot-fsync always   # Dovecot fsyncing every change before OK, as kittiwake
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from imap_fill import fill_kittiwake, fill_maildir, samples
from imap_profile import finish, render, start, summarise
from imap_servers import DOMAIN, PASSWORD, DovecotServer, KittiwakeServer, Server, Unavailable, tail
from kittiwake.auth.passwords import Passwords
from kittiwake.store.sqlite import SqliteStore

BENCH = Path(__file__).resolve().parent
BIG_USER = f"big@{DOMAIN}"
LOAD_GRACE = 120.0
SETTLE = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    seconds: float
    clients: int
    messages: int
    big: int
    runs: int
    connections: list[int]
    hold_timeout: float
    profile: Path | None
    only_kittiwake: bool = False
    dovecot_fsync: str = "optimized"

    @property
    def users(self) -> list[str]:
        return [f"bench{i}@{DOMAIN}" for i in range(1, self.clients + 1)]


@dataclass(slots=True)
class Results:
    name: str
    unavailable: str = ""
    fill_seconds: float = 0.0
    values: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


def run_load(
    mode: str,
    port: int,
    users: list[str],
    extra: list[str],
    timeout: float,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """One load process; `on_start` runs when it reports that its clock has started (mixed mode)."""
    command = [sys.executable, str(BENCH / "imap_load.py"), mode, "--port", str(port)]
    command += ["--users", ",".join(users), *extra]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        if on_start is not None:
            assert load.stdout is not None
            if load.stdout.readline():
                on_start()
        out, err = load.communicate(timeout=timeout + LOAD_GRACE)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    if load.returncode != 0:
        raise RuntimeError(f"{mode} load failed: {err.decode(errors='replace').strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def mixed(server: Server, plan: Plan, results: Results, relogin: bool) -> None:
    label = "relogin" if relogin else "one login"
    extra = ["--clients", str(plan.clients), "--seconds", str(plan.seconds)] + (
        ["--relogin"] if relogin else []
    )
    profile = plan.profile is not None and server.name == "kittiwake" and not relogin
    spies: list[subprocess.Popen[bytes] | None] = []
    cpu_before = [server.cpu_seconds()]

    def clock_started() -> None:
        # Meters start with the load's clock, after its clients have logged in.
        cpu_before[0] = server.cpu_seconds()
        if profile and plan.profile is not None:
            spies.append(start(server.pids()[0], plan.profile / "kittiwake-mixed.txt", 600))

    try:
        result = run_load("mixed", server.port, plan.users, extra, plan.seconds, clock_started)
    finally:
        for spy in spies:
            finish(spy)
    cpu = server.cpu_seconds() - cpu_before[0]
    rate = float(result["commands"]) / float(result["elapsed"])
    results.values[f"(a) commands/s, {label}"] = rate
    # CPU per command depends less than commands/s on whatever else the machine is doing.
    results.values[f"(a) server CPU ms/command, {label}"] = 1000 * cpu / max(1, int(result["commands"]))
    results.values[f"(a) load client CPU, {label} (cores)"] = float(result["client_cpu"])
    for name, value in sorted(result["mean_ms"].items()):
        results.values[f"    {label}: mean {name} ms"] = float(value)
    if result["not_ok"] or result["errors"]:
        results.notes.append(f"(a) {label}: {result['not_ok']} not OK; {result['errors']}")


def bigbox(server: Server, plan: Plan, results: Results) -> None:
    spy = None
    if plan.profile is not None and server.name == "kittiwake":
        spy = start(server.pids()[0], plan.profile / "kittiwake-bigbox.txt", 600)
    try:
        result = run_load("bigbox", server.port, [BIG_USER], ["--runs", str(plan.runs + 1)], 600)
    finally:
        finish(spy)
    select, fetch = result["select"], result["fetch"]
    results.values[f"(c) SELECT {plan.big:,} msgs, ms"] = 1000 * statistics.median(select[1:])
    results.values["(c) UID FETCH 1:* (FLAGS), ms"] = 1000 * statistics.median(fetch[1:])
    if result["fetch_lines"] != plan.big:
        results.notes.append(f"(c) FETCH returned {result['fetch_lines']} lines for {plan.big} messages")


def hold(server: Server, plan: Plan, results: Results, count: int) -> None:
    """RSS before, then with `count` connections in IDLE; the load process keeps them until its stdin closes."""
    time.sleep(SETTLE)
    before_rss, before_pss = server.rss_kib(), server.pss_kib()
    command = [sys.executable, str(BENCH / "imap_load.py"), "hold", "--port", str(server.port)]
    command += ["--users", ",".join(plan.users), "--count", str(count), "--timeout", str(plan.hold_timeout)]
    load = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert load.stdout is not None and load.stdin is not None and load.stderr is not None
        line = load.stdout.readline()
        if not line:
            raise RuntimeError(f"hold load failed: {load.stderr.read().decode(errors='replace')[-300:]}")
        report = json.loads(line)
        time.sleep(SETTLE)
        rss, pss = server.rss_kib(), server.pss_kib()
        load.stdin.close()
        load.wait(60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    opened = int(report["opened"])
    label = f"(b) {count:,} IDLE conns"
    results.values[f"{label}: opened"] = opened
    results.values[f"{label}: seconds to open"] = float(report["elapsed"])
    results.values[f"{label}: RSS KiB/conn"] = (rss - before_rss) / opened if opened else None
    results.values[f"{label}: PSS KiB/conn"] = (pss - before_pss) / opened if opened else None
    if report["failed"] or report["timed_out"]:
        results.notes.append(
            f"{label}: {report['failed']} failed, {report['timed_out']} timed out {report['errors']}"
        )


def warm_up(server: Server, plan: Plan) -> None:
    """A SELECT of every mailbox, so Dovecot has built its indexes (and kittiwake's caches are as warm)."""
    for user in [*plan.users, BIG_USER]:
        run_load("bigbox", server.port, [user], ["--runs", "1"], 600)


def measure(server: Server, plan: Plan, results: Results) -> None:
    server.start()
    # Other work on the machine skews a run; the load average shows how much there was.
    results.notes.append(f"load average before measuring: {os.getloadavg()[0]:.2f}")
    warm_up(server, plan)
    for relogin in (False, True):
        mixed(server, plan, results, relogin)
    bigbox(server, plan, results)
    for count in plan.connections:
        hold(server, plan, results, count)
    results.notes.append(f"load average after measuring: {os.getloadavg()[0]:.2f}")
    for kind in ("mixed", "bigbox"):
        if plan.profile is not None and server.name == "kittiwake":
            summary = summarise(plan.profile / f"kittiwake-{kind}.txt")
            results.profiles += render(f"py-spy kittiwake during {kind}", summary)


async def fill_store(server: KittiwakeServer, plan: Plan, password_hash: str) -> None:
    store = await SqliteStore.open(server.data_dir)
    try:
        for index, user in enumerate(plan.users):
            await store.add_account(user, password_hash)
            await fill_kittiwake(store, user, samples(plan.messages, index, 80))
        await store.add_account(BIG_USER, password_hash)
        await fill_kittiwake(store, BIG_USER, samples(plan.big, 1000, 40))
    finally:
        await store.close()


def fill_dovecot(server: DovecotServer, plan: Plan) -> None:
    for index, user in enumerate(plan.users):
        fill_maildir(server.maildir(user), samples(plan.messages, index, 80))
    fill_maildir(server.maildir(BIG_USER), samples(plan.big, 1000, 40))
    server.hand_over()


def run_all(plan: Plan, stack: ExitStack) -> list[Results]:
    password_hash = Passwords().hash(PASSWORD)
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imap-bench-")))
    folder.chmod(0o755)  # Dovecot's auth and mail processes run as other users
    kittiwake = Results("kittiwake")
    dovecot = Results("dovecot")
    server = stack.enter_context(KittiwakeServer(folder / "kittiwake"))
    assert isinstance(server, KittiwakeServer)
    started = time.perf_counter()
    asyncio.run(fill_store(server, plan, password_hash))
    kittiwake.fill_seconds = time.perf_counter() - started
    try:
        measure(server, plan, kittiwake)
    except (Unavailable, RuntimeError) as error:
        kittiwake.unavailable = f"{error}; server log: {tail(server.log)}"
    server.stop()
    if plan.only_kittiwake:
        dovecot.unavailable = "not run (--only-kittiwake)"
        return [kittiwake, dovecot]
    try:
        users = {user: password_hash for user in [*plan.users, BIG_USER]}
        (folder / "dovecot").mkdir()
        other = stack.enter_context(
            DovecotServer(folder / "dovecot", server.certificate, users, fsync=plan.dovecot_fsync)
        )
        assert isinstance(other, DovecotServer)
        started = time.perf_counter()
        fill_dovecot(other, plan)
        dovecot.fill_seconds = time.perf_counter() - started
        measure(other, plan, dovecot)
        other.stop()
    except Exception as error:  # whatever stops Dovecot, kittiwake's results are still printed
        dovecot.unavailable = f"{error}; server log: {tail(folder / 'dovecot' / 'server.log')}"
    return [kittiwake, dovecot]


def cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def table(results: list[Results]) -> list[str]:
    kittiwake, dovecot = results
    width = 48
    lines = [f"{'':<{width}}{'kittiwake':>14}{'dovecot':>14}{'kw/dovecot':>12}"]
    keys = list(dict.fromkeys([*kittiwake.values, *dovecot.values]))
    fills = {"fill mailboxes, s": (kittiwake.fill_seconds, dovecot.fill_seconds)}
    rows = [(key, kittiwake.values.get(key), dovecot.values.get(key)) for key in keys]
    rows += [(key, a, b) for key, (a, b) in fills.items()]
    for key, a, b in rows:
        b_text = "unavailable" if dovecot.unavailable else cell(b)
        a_text = "unavailable" if kittiwake.unavailable else cell(a)
        ratio = f"{a / b:.2f}x" if a is not None and b and not dovecot.unavailable else "-"
        lines.append(f"{key:<{width}}{a_text:>14}{b_text:>14}{ratio:>12}")
    for result in results:
        if result.unavailable:
            lines.append(f"{result.name} unavailable: {result.unavailable}")
        lines += [f"{result.name}: {note}" for note in result.notes]
        lines += result.profiles
    return lines


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 s loads, 10,000-message mailbox, 200 connections"
    )
    parser.add_argument("--seconds", type=float, help="length of each (a) load (default 10)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent clients in (a), one account each")
    parser.add_argument("--messages", type=int, help="messages in each (a) account's INBOX (default 200)")
    parser.add_argument("--big", type=int, help="messages in the (c) INBOX (default 100000)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs in (c), after one warm-up")
    parser.add_argument("--connections", help="comma-separated connection counts for (b) (default 1000)")
    parser.add_argument(
        "--hold-timeout", type=float, default=480.0, help="most seconds to open (b)'s connections"
    )
    parser.add_argument(
        "--profile", type=Path, help="directory for py-spy profiles of kittiwake in (a) and (c)"
    )
    parser.add_argument(
        "--only-kittiwake",
        action="store_true",
        help="skip Dovecot (say, for (b) at 10,000 connections, which takes Dovecot half an hour)",
    )
    parser.add_argument(
        "--dovecot-fsync",
        choices=("optimized", "always"),
        default="optimized",
        help="Dovecot's mail_fsync: its default, or 'always', which fsyncs every change before OK, as kittiwake does",
    )
    args = parser.parse_args()
    connections = [int(n) for n in (args.connections or ("200" if args.quick else "1000")).split(",")]
    return Plan(
        seconds=args.seconds or (3.0 if args.quick else 10.0),
        clients=args.clients,
        messages=args.messages or (100 if args.quick else 200),
        big=args.big or (10_000 if args.quick else 100_000),
        runs=args.runs,
        connections=usable_counts(connections),
        hold_timeout=args.hold_timeout,
        profile=args.profile,
        only_kittiwake=args.only_kittiwake,
        dovecot_fsync=args.dovecot_fsync,
    )


def usable_counts(counts: list[int]) -> list[int]:
    """Raise the file limit to its hard maximum; keep the counts the client and each server can hold."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    usable = [n for n in counts if n + 256 <= hard]
    for n in sorted(set(counts) - set(usable)):
        print(f"(b) {n:,} connections skipped: the file limit is {hard:,}", file=sys.stderr)
    return usable


def main() -> None:
    plan = parse_plan()
    if plan.profile is not None:
        plan.profile.mkdir(parents=True, exist_ok=True)
    # Stop cleanly however the run is ended, even when started in the background with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    try:
        with ExitStack() as stack:
            results = run_all(plan, stack)
    except KeyboardInterrupt:
        print("interrupted: servers stopped, temporary files removed", file=sys.stderr)
        sys.exit(130)
    print("\n".join(table(results)))


if __name__ == "__main__":
    main()
