"""Sample a running server with py-spy while a load runs, and rank its functions by samples.

py-spy writes collapsed stacks (`frame;frame;frame count`, the flamegraph.pl input format); only stacks that
were running are kept, and the summary ranks functions by self samples (where the CPU was) and by inclusive
samples (what was on the stack below them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")
SAMPLE_RATE = 250
# The load generator takes a moment to start and to finish; the recording stays clear of both.
LEAD_IN = 1.0


# Where a stack starts tells which thread it ran on: the event loop, the store's writer, or a worker pool.
THREAD_KINDS = (
    ("event loop", "BaseEventLoop.run_forever"),
    ("store writer thread", "GroupCommitWriter._serve"),
    ("executor threads", "_worker (concurrent/futures/thread.py"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadSummary:
    kind: str
    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSummary:
    samples: int
    possible: int
    threads: list[ThreadSummary]


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=False)
        found = shutil.which("py-spy")
    return found


def duration(seconds: float) -> int:
    """Whole seconds of recording (py-spy's unit) inside a load of `seconds`, leaving out its start and end."""
    return max(1, int(seconds - 2 * LEAD_IN))


def record(pid: int, output: Path, seconds: float, load: Callable[[], object]) -> str | None:
    """Record `pid` while `load()` runs for `seconds`; returns why not when py-spy cannot run."""
    binary = py_spy()
    if binary is None:
        return "py-spy is not installed and `pip install py-spy` failed"
    command = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", str(SAMPLE_RATE)]
    # Not pausing the server for each sample keeps the load it is under the same as when measured.
    command += ["--nonblocking", "--duration", str(duration(seconds)), "--output", str(output)]
    loading = threading.Thread(target=load, daemon=True)
    loading.start()
    time.sleep(LEAD_IN)
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, errors = spy.communicate(timeout=seconds + 60)
        loading.join()
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not output.exists():
        return f"py-spy failed: {errors.decode(errors='replace').strip()}"
    return None


def frame_name(frame: str) -> str:
    """`handle (kittiwake/smtpd/session.py:120)` -> `handle (kittiwake/smtpd/session.py)`."""
    return LINE_NUMBER.sub(")", frame)


def thread_kind(stack_text: str) -> str:
    return next((kind for kind, marker in THREAD_KINDS if marker in stack_text), "other")


def summarise(collapsed: Path, seconds: float, top: int = 12) -> ProfileSummary:
    """Per kind of thread: samples, functions by self samples, and the server's own functions by inclusive."""
    self_samples: dict[str, Counter[str]] = {}
    inclusive: dict[str, Counter[str]] = {}
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count, kind = int(count_text), thread_kind(stack_text)
        stack = [frame_name(frame) for frame in stack_text.split(";")]
        total += count
        self_samples.setdefault(kind, Counter())[stack[-1]] += count
        for frame in set(stack):
            if frame.partition("(")[2].startswith("kittiwake/"):
                inclusive.setdefault(kind, Counter())[frame] += count
    threads = [
        ThreadSummary(
            kind=kind,
            samples=sum(counter.values()),
            self_top=counter.most_common(top),
            inclusive_top=below_entry(inclusive.get(kind, Counter()), sum(counter.values()), top),
        )
        for kind, counter in sorted(self_samples.items(), key=lambda item: -sum(item[1].values()))
    ]
    return ProfileSummary(samples=total, possible=round(SAMPLE_RATE * seconds), threads=threads)


def below_entry(counter: Counter[str], samples: int, top: int) -> list[tuple[str, int]]:
    """Leaves out the frames on nearly every stack of the thread (main, serve): they say nothing."""
    return [(name, count) for name, count in counter.most_common() if count < 0.95 * samples][:top]


def render(summary: ProfileSummary) -> list[str]:
    """Percentages are of one thread's time over the recording: 100% is a thread that never waited."""
    possible = max(1, summary.possible)
    lines = [f"{summary.samples} samples of running threads; {possible} would be one thread never idle"]
    for thread in summary.threads:
        lines.append(f"{thread.kind}: busy {thread.samples * 100 / possible:.0f}% of the time; by self time:")
        lines += [f"  {count * 100 / possible:5.1f}%  {name}" for name, count in thread.self_top]
        if thread.inclusive_top:
            lines.append(f"{thread.kind}: kittiwake functions by inclusive time:")
            lines += [f"  {count * 100 / possible:5.1f}%  {name}" for name, count in thread.inclusive_top]
    return lines
