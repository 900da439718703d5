"""What /proc says about a server and its child processes (resident memory) and about the machine (CPU)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    """A `VmRSS:`-style field of /proc/PID/status in KiB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(field.encode()):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS:")


def hwm_kib(pid: int) -> int:
    """Peak resident set size of the process since it started."""
    return _status_kib(pid, "VmHWM:")


def _parent_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces; the parent pid is the second field after it.
    return int(text[text.rfind(b")") + 2 :].split()[1])


def process_tree(root: int) -> list[int]:
    """The root and every process that descends from it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(entry)
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, pending = [root], [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def machine_busy_seconds() -> float:
    """CPU time all cores have spent on anything but idling, so servers of several processes count in full."""
    with open("/proc/stat", "rb") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    # proc(5): user nice system idle iowait irq softirq steal.
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLOCK_TICKS


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process and of its children it has already waited for; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # proc(5): utime, stime, cutime, cstime are fields 14-17, counted from the pid as field 1.
    fields = text[text.rfind(b")") + 2 :].split()
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU of a server's processes, including those that exited and were reaped within the tree meanwhile."""
    return sum(_cpu_seconds(pid) for pid in process_tree(root))


def tree_rss_kib(root: int) -> int:
    return sum(rss_kib(pid) for pid in process_tree(root))


@dataclass(slots=True)
class RssPeak:
    baseline_kib: int = 0
    peak_kib: int = 0

    @property
    def growth_kib(self) -> int:
        return max(0, self.peak_kib - self.baseline_kib)


class RssSampler:
    """Samples the summed RSS of a process tree on a thread until the block it guards ends."""

    def __init__(self, root: int, interval: float = 0.005) -> None:
        self.root = root
        self.interval = interval
        self.result = RssPeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.result.peak_kib = max(self.result.peak_kib, tree_rss_kib(self.root))

    def __enter__(self) -> RssPeak:
        self.result.baseline_kib = tree_rss_kib(self.root)
        self.result.peak_kib = self.result.baseline_kib
        self._thread.start()
        return self.result

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.result.peak_kib = max(self.result.peak_kib, tree_rss_kib(self.root))
