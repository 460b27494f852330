"""`make chaos`: the long fault campaign. Each test reports what it tried and what it found
through the `chaos_report` fixture; the session ends with one table: cases tried, passed,
messages lost, messages duplicated. `make test` leaves these tests out (marker `chaos`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

RESULTS: list[CaseResult] = []


@dataclass
class CaseResult:
    case: str
    messages: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: list[str] = field(default_factory=list)
    passed: bool = False
    skipped: bool = False


@pytest.fixture
def chaos_report(request):
    """A CaseResult to fill in; it counts as passed when the test passes."""
    result = CaseResult(request.node.name)
    RESULTS.append(result)
    yield result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call"):
        for result in RESULTS:
            if result.case == item.name:
                result.passed = report.passed
                result.skipped = report.skipped


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("chaos summary")
    header = f"{'case':<58} {'result':<7} {'messages':>9} {'lost':>5} {'doubled':>7}  notes"
    write(header)
    write("-" * len(header))
    for result in RESULTS:
        verdict = "skipped" if result.skipped else "passed" if result.passed else "FAILED"
        notes = "; ".join(result.notes)
        write(
            f"{result.case:<58} {verdict:<7} {result.messages:>9} {result.lost:>5} "
            f"{result.duplicated:>7}  {notes}"
        )
    tried = sum(not result.skipped for result in RESULTS)
    passed = sum(result.passed for result in RESULTS)
    lost = sum(result.lost for result in RESULTS)
    doubled = sum(result.duplicated for result in RESULTS)
    write("-" * len(header))
    write(f"cases tried {tried}, passed {passed}; messages lost {lost}, duplicated {doubled}")
