"""Results of the SMTP acceptance bench and the tables they are printed as."""

from __future__ import annotations

from dataclasses import dataclass, field

from smtp_targets import ProcessTarget

# Stores nothing: shows how fast the load generator itself can go, not a server to compare with.
REFERENCE = "sink"
LATENCY_SESSIONS = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    size: int
    sessions: int
    per_connection: int

    @property
    def label(self) -> str:
        mode = "new conn/msg" if self.per_connection == 1 else f"{self.per_connection} msg/conn"
        return f"{self.size // 1024:>4} KB {self.sessions:>3} sess  {mode}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    rate: float
    accepted: int
    problems: int
    p50: float
    p99: float
    seconds: float
    server_cpu: float
    load_cpu: float
    note: str
    pipelining: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    rss_growth_kib: int
    hwm_growth_kib: int | None
    outcome: Outcome


@dataclass(slots=True)
class Report:
    name: str
    unavailable: str = ""
    outcomes: dict[Cell, Outcome] = field(default_factory=dict)
    memory: Memory | None = None
    profile: list[str] = field(default_factory=list)
    target: ProcessTarget | None = None


def ratio(ours: Outcome | None, theirs: Outcome | None) -> str:
    if ours is None or theirs is None or theirs.rate <= 0:
        return "n/a"
    return f"{ours.rate / theirs.rate:.2f}x"


def rate_text(outcome: Outcome | None) -> str:
    if outcome is None:
        return "unavailable"
    return f"{outcome.rate:.1f}{'!' if outcome.problems else ''}"


def print_rates(reports: dict[str, Report], cells: list[Cell]) -> None:
    names = list(reports)
    print(f"\n{'messages/s accepted (durable)':<34}" + "".join(f"{name:>13}" for name in names), end="")
    others = [name for name in names if name not in ("kittiwake", REFERENCE)]
    print("".join(f"{'kw/' + name:>14}" for name in others))
    for cell in cells:
        row = {name: reports[name].outcomes.get(cell) for name in names}
        line = f"{cell.label:<34}" + "".join(f"{rate_text(row[name]):>13}" for name in names)
        print(line + "".join(f"{ratio(row.get('kittiwake'), row[name]):>14}" for name in others))


def print_latency(reports: dict[str, Report], cells: list[Cell]) -> None:
    chosen = [cell for cell in cells if cell.sessions == LATENCY_SESSIONS and cell.per_connection > 1]
    if not chosen:
        return
    names = list(reports)
    print(f"\n{'latency p50 / p99 (ms), DATA end -> 250':<42}" + "".join(f"{name:>18}" for name in names))
    for cell in chosen:
        line = f"{cell.label:<42}"
        for name in names:
            outcome = reports[name].outcomes.get(cell)
            text = "unavailable" if outcome is None else f"{outcome.p50 * 1e3:.1f} / {outcome.p99 * 1e3:.1f}"
            line += f"{text:>18}"
        print(line)


def print_cpu(reports: dict[str, Report], cells: list[Cell]) -> None:
    names = list(reports)
    print(f"\n{'CPU, % of a core: server / load':<34}" + "".join(f"{name:>13}" for name in names))
    for cell in cells:
        line = f"{cell.label:<34}"
        for name in names:
            outcome = reports[name].outcomes.get(cell)
            text = "-" if outcome is None else f"{outcome.server_cpu:.0%}/{outcome.load_cpu:.0%}"
            line += f"{text:>13}"
        print(line)


def print_memory(reports: dict[str, Report], big_size: int) -> None:
    names = [name for name in reports if name != REFERENCE]
    memories = {name: reports[name].memory for name in names}
    print(f"\n{f'one {big_size // 2**20} MiB message':<42}" + "".join(f"{name:>13}" for name in names))
    rows: list[tuple[str, list[str]]] = [
        ("RSS growth, all server processes (MiB)", []),
        ("VmHWM growth, server process (MiB)", []),
        ("time to 250 (s)", []),
    ]
    for name in names:
        memory = memories[name]
        if memory is None:
            for _, cells in rows:
                cells.append("unavailable")
            continue
        hwm = "n/a" if memory.hwm_growth_kib is None else f"{memory.hwm_growth_kib / 1024:.1f}"
        rows[0][1].append(f"{memory.rss_growth_kib / 1024:.1f}")
        rows[1][1].append(hwm)
        accepted = memory.outcome.accepted == 1
        rows[2][1].append(f"{memory.outcome.seconds:.2f}" if accepted else "rejected")
    for title, values in rows:
        print(f"{title:<42}" + "".join(f"{value:>13}" for value in values))


def print_notes(reports: dict[str, Report]) -> None:
    for name, report in reports.items():
        if report.unavailable:
            print(f"{name}: unavailable: {report.unavailable}")
        for cell, outcome in report.outcomes.items():
            if outcome.problems:
                print(
                    f"{name} {cell.label.strip()}: {outcome.problems} failed sessions/messages: {outcome.note}"
                )
        if report.memory is not None and report.memory.outcome.accepted != 1:
            print(f"{name} big message: {report.memory.outcome.note}")
        if any(outcome.pipelining is False for outcome in report.outcomes.values()):
            print(f"{name} does not offer PIPELINING: MAIL, RCPT and DATA each waited for their reply")
    for line in reports.get("kittiwake", Report("kittiwake")).profile:
        print(line)
