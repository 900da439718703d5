"""IMAP load generator, run as its own process so its CPU is not the server's: prints one JSON object.

- mixed --port P --users U1,U2 --seconds 10 [--relogin]: commands/s of a session loop;
- hold --port P --users U1,U2 --count 1000: N connections in IDLE, reported, kept until stdin ends;
- bigbox --port P --users U --runs 4: times of SELECT and UID FETCH 1:* (FLAGS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from imap_client import ImapClient, ImapError, Reply, client_tls

PASSWORD = b"password123"
EXISTS = re.compile(rb"^\* (\d+) EXISTS")
HEADER_FIELDS = b"(UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])"
HEADERS_PER_FETCH = 10


@dataclass(slots=True)
class Tally:
    """Commands answered, by name and status, and the time spent waiting for each kind."""

    statuses: Counter[bytes] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def note(self, name: str, reply: Reply, started: float) -> Reply:
        self.statuses[reply.status] += 1
        self.counts[name] += 1
        self.seconds[name] += time.perf_counter() - started
        if reply.status != b"OK" and len(self.errors) < 5:
            self.errors.append(reply.text.decode(errors="replace").strip())
        return reply

    def reset(self) -> None:
        self.statuses.clear()
        self.seconds.clear()
        self.counts.clear()


def small_message(number: int) -> bytes:
    return (
        b"From: load@example.net\r\nTo: bench@example.org\r\nSubject: appended %d\r\n"
        b"Message-ID: <%d.load@example.net>\r\n\r\nA small message appended by the load loop.\r\n"
    ) % (number, number)


class Session:
    """One client's loop: the command mix imaptest uses by default, in a fixed order."""

    def __init__(self, port: int, user: bytes, tally: Tally, relogin: bool, seed: int) -> None:
        self.port = port
        self.user = user
        self.tally = tally
        self.relogin = relogin
        self.rng = random.Random(seed)
        self.client: ImapClient | None = None

    async def run(self, *text: bytes, literal: bytes | None = None, keep: bool = False) -> Reply:
        assert self.client is not None
        started = time.perf_counter()
        reply = await self.client.command(b" ".join(text), literal, keep=keep)
        return self.tally.note(text[0].decode(), reply, started)

    async def login(self) -> None:
        self.client = await ImapClient.connect(self.port, client_tls())
        await self.run(b"LOGIN", self.user, PASSWORD)

    async def loop_once(self, number: int) -> None:
        await self.run(b"LIST", b'""', b'"*"')
        await self.run(b"STATUS", b"INBOX", b"(MESSAGES UIDNEXT UNSEEN)")
        selected = await self.run(b"SELECT", b"INBOX", keep=True)
        exists = max((int(m.group(1)) for line in selected.lines if (m := EXISTS.match(line))), default=0)
        if exists >= 2:
            first = self.rng.randint(1, max(1, exists - HEADERS_PER_FETCH + 1))
            last = min(exists, first + HEADERS_PER_FETCH - 1)
            await self.run(b"FETCH", b"%d:%d" % (first, last), HEADER_FIELDS)
            await self.run(b"FETCH", b"%d" % self.rng.randint(1, exists), b"(BODY.PEEK[])")
            sign = b"+" if number % 2 else b"-"
            await self.run(b"STORE", b"%d" % self.rng.randint(1, exists), sign + b"FLAGS", b"(\\Flagged)")
            await self.run(b"STORE", b"%d" % self.rng.randint(1, exists), b"+FLAGS", b"(\\Deleted)")
            await self.run(b"EXPUNGE")
        await self.run(b"APPEND", b"INBOX", b"(\\Seen)", literal=small_message(number))

    async def logout(self) -> None:
        if self.client is not None:
            await self.run(b"LOGOUT")
            await self.client.close()
            self.client = None

    async def loop(self, deadline: float) -> None:
        number = 0
        try:
            while time.perf_counter() < deadline:
                if self.client is None:
                    await self.login()
                await self.loop_once(number)
                number += 1
                if self.relogin:
                    await self.logout()
            await self.logout()
        except (ImapError, OSError) as error:
            self.tally.errors.append(f"{self.user.decode()}: {error}")


async def mixed(args: argparse.Namespace) -> dict[str, object]:
    tally = Tally()
    users = args.users.encode().split(b",")
    sessions = [
        Session(args.port, users[i % len(users)], tally, args.relogin, seed=i) for i in range(args.clients)
    ]
    if not args.relogin:
        # Logged in before the clock starts: with one login per client, the loop is what is measured.
        await asyncio.gather(*(session.login() for session in sessions))
        tally.reset()
    print(json.dumps({"clock": "started"}), flush=True)  # the caller starts its own meters here
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(*(session.loop(deadline) for session in sessions))
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "commands": sum(tally.statuses.values()),
        "ok": tally.statuses[b"OK"],
        "not_ok": sum(n for status, n in tally.statuses.items() if status != b"OK"),
        "elapsed": elapsed,
        "client_cpu": (usage.ru_utime + usage.ru_stime) / elapsed,
        "mean_ms": {name: 1000 * tally.seconds[name] / n for name, n in tally.counts.items()},
        "errors": tally.errors[:5],
    }


async def open_idle(port: int, user: bytes) -> ImapClient:
    client = await ImapClient.connect(port, client_tls())
    for command in (b"LOGIN " + user + b" " + PASSWORD, b"SELECT INBOX"):
        reply = await client.command(command)
        if reply.status != b"OK":
            raise ImapError(reply.text.decode(errors="replace").strip())
    await client.idle()
    return client


async def hold(args: argparse.Namespace) -> dict[str, object]:
    """Open connections a bounded number at a time, report, then keep them until stdin closes."""
    users = args.users.encode().split(b",")
    gate = asyncio.Semaphore(args.concurrency)
    clients: list[ImapClient] = []
    errors: list[str] = []
    started = time.perf_counter()

    async def one(index: int) -> None:
        async with gate:
            try:
                client = await open_idle(args.port, users[index % len(users)])
            except (ImapError, OSError) as error:
                errors.append(str(error) or type(error).__name__)
                return
            clients.append(client)

    tasks = [asyncio.ensure_future(one(i)) for i in range(args.count)]
    _done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    report: dict[str, object] = {"opened": len(clients), "failed": len(errors), "timed_out": len(pending)}
    report |= {"elapsed": time.perf_counter() - started, "errors": errors[:3]}
    print(json.dumps(report), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    return {}


async def bigbox(args: argparse.Namespace) -> dict[str, object]:
    client = await ImapClient.connect(args.port, client_tls())
    login = await client.command(b"LOGIN " + args.users.encode().split(b",")[0] + b" " + PASSWORD)
    if login.status != b"OK":
        raise ImapError(login.text.decode(errors="replace"))
    select: list[float] = []
    fetch: list[float] = []
    lines = 0
    for _ in range(args.runs):
        started = time.perf_counter()
        selected = await client.bulk(b"SELECT INBOX")
        middle = time.perf_counter()
        fetched = await client.bulk(b"UID FETCH 1:* (FLAGS)")
        select.append(middle - started)
        fetch.append(time.perf_counter() - middle)
        lines = fetched.untagged
        if selected.status != b"OK" or fetched.status != b"OK":
            raise ImapError(f"{selected.text!r} {fetched.text!r}")
        await client.command(b"UNSELECT")
    await client.command(b"LOGOUT")
    await client.close()
    return {"select": select, "fetch": fetch, "fetch_lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=("mixed", "hold", "bigbox"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", required=True, help="comma-separated logins, used round-robin")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--relogin", action="store_true", help="LOGIN and LOGOUT on every loop")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    modes = {"mixed": mixed, "hold": hold, "bigbox": bigbox}
    result = asyncio.run(modes[args.mode](args))
    if result:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
