"""The reliability suite's figures and its summary table.

Set ``PYZK_RELIABILITY=long`` (``python -m tests.reliability --long`` does) for the long
version; the default is the short one CI runs. Each test adds what it did to
:data:`FIGURES`; the table is printed at the end of the pytest run.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

LONG = os.environ.get("PYZK_RELIABILITY", "short") == "long"

COLUMNS = ("histories", "operations", "requests", "faults", "violations")


@dataclass
class Figures:
    rows: dict[str, dict[str, int]]
    notes: list[str]

    def add(self, section: str, **counts: int) -> None:
        row = self.rows[section]
        for k, v in counts.items():
            row[k] = row.get(k, 0) + v

    def note(self, section: str, text: str) -> None:
        """A measurement worth reading under the table (memory, sizes)."""
        self.notes.append(f"{section}: {text}")

    def table(self) -> str:
        width = max(len(s) for s in self.rows) + 2
        head = "section".ljust(width) + "".join(c.rjust(12) for c in COLUMNS)
        lines = [head, "-" * len(head)]
        totals: dict[str, int] = defaultdict(int)
        for section, row in self.rows.items():
            cells = "".join(str(row.get(c, "")).rjust(12) for c in COLUMNS)
            lines.append(section.ljust(width) + cells)
            for c in COLUMNS:
                totals[c] += row.get(c, 0)
        lines.append("-" * len(head))
        lines.append("total".ljust(width) + "".join(str(totals[c]).rjust(12) for c in COLUMNS))
        return "\n".join(lines + self.notes)


FIGURES = Figures(defaultdict(dict), [])


@pytest.fixture
def figures() -> Iterator[Figures]:
    yield FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.rows:
        mode = "long" if LONG else "short"
        terminalreporter.write_sep("=", f"reliability summary ({mode})")
        terminalreporter.write_line(FIGURES.table())
