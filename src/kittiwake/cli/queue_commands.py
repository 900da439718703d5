"""`kittiwake queue list|show|retry|delete|flush`: look at and steer the outbound queue."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from kittiwake.cli.context import load, with_store
from kittiwake.cli.errors import CliError
from kittiwake.store.interface import QueueEntry


def add_commands(commands: Any) -> None:
    queue = commands.add_parser("queue", help="list, inspect, retry or delete outbound mail")
    actions = queue.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="one line per queued message").set_defaults(handler=queue_list)
    for name, handler, text in (
        ("show", queue_show, "every recipient of one message with its last reply"),
        ("retry", queue_retry, "try one message again now"),
        ("delete", queue_delete, "drop one message without notifying anyone"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("queue_id")
        sub.set_defaults(handler=handler)
    actions.add_parser("flush", help="try every queued message again now").set_defaults(handler=queue_flush)


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _summary(entry: QueueEntry) -> str:
    waiting = [r for r in entry.recipients if r.status in ("pending", "deferred")]
    next_attempt = min((r.next_attempt for r in waiting), default=0)
    return (
        f"{entry.id}  {entry.size:>9}  {_when(entry.created)}  <{entry.sender}>  "
        f"{len(waiting)}/{len(entry.recipients)} waiting  next {_when(next_attempt) if waiting else '-'}"
    )


def queue_list(args: argparse.Namespace) -> int:
    entries = with_store(load(args), lambda store: store.load_queue())
    for entry in entries:
        print(_summary(entry))
    if not entries:
        print("the queue is empty")
    return 0


def queue_show(args: argparse.Namespace) -> int:
    entry = with_store(load(args), lambda store: store.get_queue_entry(args.queue_id))
    if entry is None:
        raise CliError(f"no queued message {args.queue_id}")
    print(_summary(entry))
    print(f"  parameters: {json.loads(entry.params)}")
    for r in entry.recipients:
        print(f"  <{r.address}>  {r.status}  attempts {r.attempts}  next {_when(r.next_attempt)}")
        if r.last_reply:
            print(f"      last reply from {r.remote_mta or '-'}: {r.last_reply}")
    return 0


def queue_retry(args: argparse.Namespace) -> int:
    count = with_store(load(args), lambda store: store.retry_queue(args.queue_id, int(time.time())))
    if not count:
        raise CliError(f"no waiting recipients in {args.queue_id}")
    print(f"{args.queue_id}: {count} recipient(s) will be tried at once")
    return 0


def queue_delete(args: argparse.Namespace) -> int:
    with_store(load(args), lambda store: store.delete_queue_entry(args.queue_id))
    print(f"deleted {args.queue_id}")
    return 0


def queue_flush(args: argparse.Namespace) -> int:
    count = with_store(load(args), lambda store: store.retry_queue(None, int(time.time())))
    print(f"{count} recipient(s) will be tried at once")
    return 0
