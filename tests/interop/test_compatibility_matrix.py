"""scripts/compatibility_matrix.py: JUnit outcomes become pass / FAIL / not tested cells, and every client
test has a cell to land in."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "compatibility_matrix", ROOT / "scripts" / "compatibility_matrix.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


matrix_script = load_script()

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.interop.test_clients" name="test_curl_sends_x[starttls]" time="1"/>
<testcase classname="tests.interop.test_clients" name="test_curl_sends_x[implicit-tls]" time="1">
<failure message="boom">boom</failure></testcase>
<testcase classname="tests.interop.test_clients" name="test_curl_imaps_partial_fetch" time="1"/>
<testcase classname="tests.interop.test_clients" name="test_msmtp_x[starttls]" time="1"><error message="e"/></testcase>
</testsuite></testsuites>
"""


def test_outcomes_read_passes_failures_and_errors_from_junit(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(JUNIT)
    assert matrix_script.outcomes(report) == {
        "test_curl_sends_x[starttls]": True,
        "test_curl_sends_x[implicit-tls]": False,
        "test_curl_imaps_partial_fetch": True,
        "test_msmtp_x[starttls]": False,
    }


@pytest.mark.parametrize(
    ("program", "feature", "expected"),
    [
        ("curl", "STARTTLS", "pass"),
        ("curl", "implicit TLS", "FAIL"),
        ("curl", "send", "FAIL"),  # one of its two tests failed
        ("curl", "AUTH", "FAIL"),
        ("curl", "partial fetch", "pass"),
        ("curl", "IDLE", "not tested"),
        ("msmtp", "send", "FAIL"),
        ("swaks", "send", "not tested"),
    ],
)
def test_cells_pass_only_when_every_test_of_the_feature_passed(
    tmp_path: Path, program: str, feature: str, expected: str
) -> None:
    report = tmp_path / "report.xml"
    report.write_text(JUNIT)
    results = matrix_script.outcomes(report)
    table = matrix_script.render(matrix_script.matrix(results), {}, results)
    (row,) = [line for line in table.splitlines() if line.startswith(f"| {program} |")]
    cells = dict(zip(matrix_script.FEATURES, row.strip("| ").split(" | ")[2:], strict=True))
    assert cells[feature] == expected


def client_test_names() -> list[str]:
    paths = [
        *sorted((ROOT / "tests" / "interop").glob("test_*.py")),
        ROOT / "tests" / "service" / "smtpd" / "test_smtp_clients.py",
        ROOT / "tests" / "service" / "imapd" / "test_imap_clients.py",
    ]
    names = []
    for path in paths:
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text())
        names += [n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef)]
    return [name for name in names if name.startswith("test_")]


def without_parameters(pattern: str) -> str:
    """A rule written for one parameter id ("test_x.*\\[starttls\\]") reduced to the bare test name's part."""
    return re.split(r"\.\*\\\[|\\\[", pattern)[0]


@pytest.mark.parametrize("name", client_test_names())
def test_every_client_test_lands_in_a_cell_of_the_matrix(name: str) -> None:
    assert any(re.search(without_parameters(rule.pattern), name) for rule in matrix_script.RULES), name
