"""Every benchmark, one after the other, then one summary of their key figures.

    python bench/all.py            # full runs (tens of minutes; SMTP, IMAP and outbound need root)
    python bench/all.py --quick    # short runs of each
    python bench/all.py --only store,inbound_checks

Each benchmark's own output is shown as it runs. The summary repeats each one's table of results (the rows
that carry its key ratios: kittiwake against Postfix, Dovecot or aiosmtpd, and the cost of the inbound
checks), with its exit status and wall time. A benchmark missing from bench/ is listed as absent.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RATIO = re.compile(r"\d(?:\.\d+)?x(?:\s|$)|kw/|reference:")


def block_from(marker: str) -> Callable[[list[str]], list[str]]:
    """The lines from the first one containing `marker` up to the next blank line: one printed table."""

    def pick(lines: list[str]) -> list[str]:
        for start, line in enumerate(lines):
            if marker in line:
                end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
                return lines[start:end]
        return []

    return pick


def lines_with_ratios(lines: list[str]) -> list[str]:
    return [line for line in lines if RATIO.search(line)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Benchmark:
    name: str
    quick: tuple[str, ...]  # the arguments that make a short run of this benchmark
    figures: Callable[[list[str]], list[str]]


BENCHMARKS = (
    Benchmark(name="store", quick=("--seconds", "1"), figures=block_from("deliveries/s")),
    Benchmark(name="smtp", quick=("--quick",), figures=block_from("messages/s accepted")),
    Benchmark(name="imap", quick=("--quick",), figures=block_from("kw/dovecot")),
    Benchmark(name="outbound", quick=("--quick",), figures=lines_with_ratios),
    Benchmark(name="inbound_checks", quick=("--seconds", "1"), figures=block_from("port 25")),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    name: str
    status: str
    seconds: float
    figures: list[str]


def run(benchmark: Benchmark, quick: bool) -> Outcome:
    script = BENCH / f"{benchmark.name}.py"
    if not script.exists():
        return Outcome(name=benchmark.name, status="absent", seconds=0.0, figures=[])
    command = [sys.executable, str(script), *(benchmark.quick if quick else ())]
    print(f"\n=== {benchmark.name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=BENCH.parent)
    assert process.stdout is not None
    captured = []
    for line in process.stdout:  # shown live, kept for the summary
        print(line, end="", flush=True)
        captured.append(line.rstrip("\n"))
    code = process.wait()
    status = "ok" if code == 0 else f"exit {code}"
    return Outcome(
        name=benchmark.name,
        status=status,
        seconds=time.monotonic() - started,
        figures=benchmark.figures(captured),
    )


def summary(outcomes: list[Outcome]) -> list[str]:
    lines = ["", "=" * 78, "Summary", "", f"{'benchmark':<18}{'status':<12}{'seconds':>9}"]
    lines += [f"{o.name:<18}{o.status:<12}{o.seconds:>9.0f}" for o in outcomes]
    for outcome in outcomes:
        if outcome.status == "absent":
            continue
        lines += ["", f"--- {outcome.name}"]
        lines += outcome.figures or ["(no result table found in its output; see above)"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs: each benchmark's --quick or 1 s loads"
    )
    names = [b.name for b in BENCHMARKS]
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(names)}")
    arguments = parser.parse_args(argv)
    chosen = arguments.only.split(",") if arguments.only else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    outcomes = []
    try:
        for benchmark in BENCHMARKS:
            if benchmark.name in chosen:
                outcomes.append(run(benchmark, arguments.quick))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    print("\n".join(summary(outcomes)))
    return 0 if all(o.status in ("ok", "absent") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
