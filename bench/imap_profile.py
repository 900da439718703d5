"""Sampling profiles of the kittiwake process with py-spy, summarised as the functions where time goes.

py-spy's raw output is one collapsed stack per line (`outer (file:line);...;inner (file:line) count`).
Samples whose innermost frame is a wait (a thread parked on its queue, the loop in epoll) are left out. The
summary gives, per function (line numbers dropped), its self samples (it was the innermost frame) and its
inclusive samples (anywhere on the stack), and splits samples between the event loop and worker threads.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

FRAME_LINE = re.compile(r" \(([^()]*):\d+\)$")
RATE = 200
ROOT_FRAMES = (
    "<module> (kittiwake/__main__.py)",
    "main (kittiwake/cli/",
    "run_serve (",
    "serve_config (",
    "_tracked.<locals>.serve (",
    "make_handler.<locals>.handle (",
    "ImapConnection.serve (",
    "ImapConnection._handle_event",
    "run_command (kittiwake/imapd/dispatch.py)",
    "_run_handler (kittiwake/imapd/dispatch.py)",
    "GroupCommitWriter._serve (",
)
# py-spy does not always see these as idle: threads parked on a queue, the loop waiting in epoll.
WAITING = (
    "_worker (concurrent/futures/thread.py)",
    "EpollSelector.select (selectors.py)",
    "GroupCommitWriter._take_group (kittiwake/store/sqlite/writer.py)",
    "Condition.wait (threading.py)",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    samples: int
    waiting: int
    threads: list[tuple[str, int]]
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]


def start(pid: int, output: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy record on the process for `seconds`; None when py-spy is not installed."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    command += ["--rate", str(RATE), "--format", "raw", "--output", str(output), "--threads"]
    return subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def finish(spy: subprocess.Popen[bytes] | None, timeout: float = 60.0) -> None:
    """Stop recording now: on SIGINT py-spy writes what it has sampled so far."""
    if spy is None:
        return
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def _function(frame: str) -> str:
    """`handle (kittiwake/imapd/fetch.py:88)` -> `handle (kittiwake/imapd/fetch.py)`."""
    return FRAME_LINE.sub(r" (\1)", frame.strip())


def _is_root(function: str) -> bool:
    """Frames every request passes through (the entry point, the connection loop) say nothing on their own."""
    return function.startswith(ROOT_FRAMES)


def _thread_kind(frames: list[str]) -> str:
    text = ";".join(frames[:8])
    if "_run_module_as_main" in text:
        return "event loop"
    if "writer.py" in text:
        return "store writer thread"
    if "concurrent/futures/thread.py" in text:
        return "thread pool (store reads, to_thread)"
    return "other threads"


def summarise(path: Path, top: int = 20) -> Summary | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("thread (")]
        if not frames:
            continue
        if _function(frames[-1]) in WAITING:
            waiting += count
            continue
        total += count
        threads[_thread_kind(frames)] += count
        own[_function(frames[-1])] += count
        for function in {_function(f) for f in frames}:
            inclusive[function] += count
    if total == 0:
        return None
    kittiwake = Counter({n: count for n, count in inclusive.items() if "kittiwake/" in n and not _is_root(n)})
    return Summary(
        samples=total,
        waiting=waiting,
        threads=threads.most_common(),
        self_top=own.most_common(top),
        inclusive_top=kittiwake.most_common(top),
    )


def render(title: str, summary: Summary | None) -> list[str]:
    if summary is None:
        return [f"{title}: no profile (py-spy missing or could not attach)"]
    lines = [f"{title}: {summary.samples} busy samples at {RATE}/s ({summary.waiting} waiting left out)"]
    lines += [f"  {share(n, summary.samples)}  {kind}" for kind, n in summary.threads]
    lines.append("  self time (innermost frame):")
    lines += [f"    {share(n, summary.samples)}  {name}" for name, n in summary.self_top]
    lines.append("  inclusive, kittiwake functions:")
    lines += [f"    {share(n, summary.samples)}  {name}" for name, n in summary.inclusive_top]
    return lines


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%"
