"""The fault suite (tests/faults/, marker `faults`): its table of results also goes to the
terminal summary, so it shows in `make test` output without -s."""

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    support = sys.modules.get("tests.faults.support")
    text = support.table() if support is not None else ""
    if text:
        terminalreporter.write_sep("=", "fault suite")
        terminalreporter.write_line(text)
