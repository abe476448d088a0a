"""Run the reliability suite and print its summary table.

    python -m tests.reliability            # the short version, as CI runs it
    python -m tests.reliability --long     # the long one: more runs, faults and examples
    python -m tests.reliability --long -k linearizability   # any pytest arguments after

The table (histories checked, operations, requests sent, faults injected, violations)
closes the output; the exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    p.add_argument("--long", action="store_true", help="the long version")
    args, rest = p.parse_known_args(argv)
    os.environ["PYZK_RELIABILITY"] = "long" if args.long else "short"  # read by conftest
    here = Path(__file__).parent
    return int(pytest.main(["-q", "-p", "no:cacheprovider", str(here), *rest]))


if __name__ == "__main__":
    sys.exit(main())
