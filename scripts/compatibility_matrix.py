"""Run the tests that drive kittiwake with real mail programs and peers, and write docs/compatibility.md: one
row per program, one column per feature, each cell pass, fail or not tested, with the program's version.

    python scripts/compatibility_matrix.py              # run the tests, write docs/compatibility.md
    python scripts/compatibility_matrix.py --junit r.xml # build the table from an existing JUnit report
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
TEST_PATHS = (
    "tests/interop",
    "tests/service/smtpd/test_smtp_clients.py",
    "tests/service/imapd/test_imap_clients.py",
)
# Checks this script's own mapping; it drives no mail program.
IGNORED = "tests/interop/test_compatibility_matrix.py"
FEATURES = (
    "send",
    "STARTTLS",
    "implicit TLS",
    "AUTH",
    "fetch",
    "partial fetch",
    "flags",
    "IDLE",
    "sync",
    "receive (MX)",
    "DKIM/SPF/DMARC pass",
)
PASS, FAIL, UNTESTED = "pass", "FAIL", "not tested"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """Tests whose name (with its parameters) matches `pattern` exercise `features` of `program`."""

    pattern: str
    program: str
    features: tuple[str, ...]


RULES = (
    Rule(pattern=r"test_swaks_starttls_and_auth", program="swaks", features=("send", "STARTTLS", "AUTH")),
    Rule(pattern=r"test_swaks_implicit_tls", program="swaks", features=("send", "implicit TLS", "AUTH")),
    Rule(
        pattern=r"test_swaks_(plain_mx|pipelined_session|pipelined_group)",
        program="swaks",
        features=("send",),
    ),
    Rule(pattern=r"test_swaks_pipelined_starttls", program="swaks", features=("send", "STARTTLS")),
    Rule(pattern=r"test_aiosmtplib_starttls", program="aiosmtplib", features=("send", "STARTTLS", "AUTH")),
    Rule(
        pattern=r"test_aiosmtplib_implicit", program="aiosmtplib", features=("send", "implicit TLS", "AUTH")
    ),
    Rule(pattern=r"test_aiosmtplib_mx_delivery", program="aiosmtplib", features=("send",)),
    Rule(pattern=r"test_imapclient_starttls", program="imapclient", features=("STARTTLS", "AUTH")),
    Rule(
        pattern=r"test_imapclient_fetches",
        program="imapclient",
        features=("implicit TLS", "AUTH", "fetch", "partial fetch"),
    ),
    Rule(pattern=r"test_imapclient_(flags|append)", program="imapclient", features=("flags",)),
    Rule(pattern=r"test_imapclient_idle", program="imapclient", features=("IDLE",)),
    Rule(pattern=r"test_imapclient_condstore", program="imapclient", features=("sync",)),
    Rule(
        pattern=r"test_imap_tools_fetches", program="imap-tools", features=("implicit TLS", "AUTH", "fetch")
    ),
    Rule(pattern=r"test_imap_tools_marks_seen", program="imap-tools", features=("flags",)),
    Rule(pattern=r"test_imap_tools_raw_client", program="imap-tools", features=("fetch",)),
    Rule(
        pattern=r"test_mbsync_.*\[imaps-login\]", program="mbsync", features=("implicit TLS", "AUTH", "sync")
    ),
    Rule(pattern=r"test_mbsync_.*\[starttls-", program="mbsync", features=("STARTTLS", "AUTH", "sync")),
    Rule(
        pattern=r"test_mbsync_pushes_local_flag|test_mbsync_brings_server_flag",
        program="mbsync",
        features=("flags",),
    ),
    Rule(pattern=r"test_mbsync_brings_delivered", program="mbsync", features=("fetch",)),
    Rule(pattern=r"test_mbsync_", program="mbsync", features=("sync",)),
    Rule(pattern=r"test_curl_sends.*\[starttls\]", program="curl", features=("send", "STARTTLS", "AUTH")),
    Rule(
        pattern=r"test_curl_sends.*\[implicit-tls\]",
        program="curl",
        features=("send", "implicit TLS", "AUTH"),
    ),
    Rule(
        pattern=r"test_curl_imaps_(lists|fetches)", program="curl", features=("implicit TLS", "AUTH", "fetch")
    ),
    Rule(pattern=r"test_curl_imaps_partial", program="curl", features=("partial fetch",)),
    Rule(pattern=r"test_msmtp_.*\[starttls\]", program="msmtp", features=("send", "STARTTLS", "AUTH")),
    Rule(
        pattern=r"test_msmtp_.*\[implicit-tls\]", program="msmtp", features=("send", "implicit TLS", "AUTH")
    ),
    Rule(
        pattern=r"test_aioimaplib_logs_in", program="aioimaplib", features=("implicit TLS", "AUTH", "fetch")
    ),
    Rule(pattern=r"test_aioimaplib_idle", program="aioimaplib", features=("IDLE",)),
    Rule(pattern=r"test_fetchmail_", program="fetchmail", features=("implicit TLS", "AUTH", "fetch")),
    Rule(pattern=r"test_offlineimap_", program="offlineimap3", features=("implicit TLS", "AUTH", "sync")),
    Rule(pattern=r"test_offlineimap_brings_delivered", program="offlineimap3", features=("fetch",)),
    Rule(
        pattern=r"test_offlineimap_pushes_local_flag|test_offlineimap_brings_server_flag",
        program="offlineimap3",
        features=("flags",),
    ),
    Rule(pattern=r"test_getmail_", program="getmail6", features=("implicit TLS", "AUTH", "fetch")),
    Rule(pattern=r"test_mutt_.*\[starttls\]", program="mutt", features=("send", "STARTTLS", "AUTH")),
    Rule(pattern=r"test_mutt_.*\[implicit-tls\]", program="mutt", features=("send", "implicit TLS", "AUTH")),
    Rule(pattern=r"test_postfix_relays_into", program="Postfix", features=("send", "STARTTLS")),
    Rule(
        pattern=r"test_kittiwake_delivers_dkim_signed_mail_to_a_postfix",
        program="Postfix",
        features=("receive (MX)",),
    ),
    Rule(
        pattern=r"test_mail_between_two_sites",
        program="kittiwake (second site)",
        features=("send", "STARTTLS", "receive (MX)", "DKIM/SPF/DMARC pass"),
    ),
)


def _first_line(command: list[str], pattern: str = r"\d+(?:\.\d+)+") -> str:
    """The first version-like string a program prints about itself, or "?" if it is missing."""
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    found = re.search(pattern, result.stdout + result.stderr)
    return found.group(0) if found else "?"


def _distribution(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def program_versions() -> dict[str, str]:
    return {
        "swaks": _first_line(["swaks", "--version"]),
        "aiosmtplib": _distribution("aiosmtplib"),
        "imapclient": _distribution("imapclient"),
        "imap-tools": _distribution("imap-tools"),
        "mbsync": _first_line(["mbsync", "--version"]),
        "curl": _first_line(["curl", "--version"]),
        "msmtp": _first_line(["msmtp", "--version"]),
        "aioimaplib": _distribution("aioimaplib"),
        "fetchmail": _first_line(["fetchmail", "--version"]),
        "mutt": _first_line(["mutt", "-v"]),
        "offlineimap3": _first_line(["offlineimap", "--version"]),
        "getmail6": _first_line(["getmail", "--version"]),
        "Postfix": _first_line(["/usr/sbin/postconf", "-d", "mail_version"]),
        "kittiwake (second site)": _distribution("kittiwake"),
    }


def run_tests(report: Path) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    command.append(f"--ignore={IGNORED}")
    return subprocess.run([*command, *TEST_PATHS], cwd=ROOT, check=False).returncode


def outcomes(report: Path) -> dict[str, bool]:
    """Test name (with parameters) -> passed; a skipped test counts as not passing."""
    results: dict[str, bool] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        failed = any(child.tag in ("failure", "error", "skipped") for child in case)
        results[case.get("name", "")] = not failed
    return results


def matrix(results: dict[str, bool]) -> dict[str, dict[str, str]]:
    cells: dict[str, dict[str, str]] = {rule.program: {} for rule in RULES}
    for name, passed in results.items():
        for rule in RULES:
            if not re.search(rule.pattern, name):
                continue
            row = cells[rule.program]
            for feature in rule.features:
                row[feature] = FAIL if not passed or row.get(feature) == FAIL else PASS
    return cells


def render(cells: dict[str, dict[str, str]], versions: dict[str, str], results: dict[str, bool]) -> str:
    header = ["Program", "Version", *FEATURES]
    lines = [
        "# Compatibility",
        "",
        "Mail programs and mail servers tested against kittiwake, each feature exercised end to end over real",
        "sockets (TLS with a test CA). *pass*: every test of that feature passed; *FAIL*: at least one failed;",
        "*not tested*: no test covers it. Features: *send* (the program hands mail to kittiwake), *receive (MX)*",
        "(kittiwake's queue delivers to it), *DKIM/SPF/DMARC pass* (the receiving side's checks all pass).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for program, row in cells.items():
        values = [row.get(feature, UNTESTED) for feature in FEATURES]
        lines.append("| " + " | ".join([program, versions.get(program, "?"), *values]) + " |")
    passed = sum(results.values())
    unmapped = sorted(name for name in results if not any(re.search(r.pattern, name) for r in RULES))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines += [
        "",
        f"{passed} of {len(results)} tests passed.",
        "",
        f"How generated: `python scripts/compatibility_matrix.py` on {stamp} (Python "
        f"{sys.version.split()[0]}), which runs `pytest {' '.join(TEST_PATHS)}` with `--junitxml` (and "
        f"`--ignore={IGNORED}`) and maps "
        "each test to the cells above; versions come from each program's `--version` or the installed "
        "Python distribution.",
    ]
    if unmapped:
        lines += ["", "Tests not mapped to a cell: " + ", ".join(f"`{name}`" for name in unmapped) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--junit", type=Path, help="use this JUnit XML report instead of running the tests")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "compatibility.md")
    arguments = parser.parse_args(argv)
    status = 0
    with tempfile.TemporaryDirectory() as folder:
        report = arguments.junit
        if report is None:
            report = Path(folder) / "report.xml"
            status = run_tests(report)
        results = outcomes(report)
    arguments.output.write_text(render(matrix(results), program_versions(), results))
    print(f"wrote {arguments.output}: {sum(results.values())} of {len(results)} tests passed")
    return status


if __name__ == "__main__":
    sys.exit(main())
