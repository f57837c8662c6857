# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: run every hostile input of issue 20 and print one row per input, then the totals.

Columns: input (class:module.input), origin (the issue's input or one added for its class), outcome (refused,
masked, or what went wrong), seconds, files changed (in the case's temporary directory), lab writes (write
calls that reached a fake AWS client; the network cases talk to a local server that never answers, so they
can write nothing). The cases are the test suite's: tests/unit/plugins/modules/hostile_inputs.py and
tests/integration/hostile_inputs/network_cases.py (request_timeout 2 s there).

    . hacking/env.sh
    python tests/bench/bench_hostile_inputs.py [--no-network] [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import collections
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / ".cache" / "collections"))

from tests.integration.hostile_inputs.network_cases import Blackhole, closed_port, network_cases  # noqa: E402

from ansible_collections.circleci.server.tests.unit.plugins.modules.hostile_inputs import (  # noqa: E402,I100
    all_cases,
    judge,
    run_case,
)


class CaseHung(BaseException):
    """Raised by SIGALRM in a case that outlived --case-timeout (a BaseException: modules catch Exception)."""


def _hung(_signum, _frame):
    raise CaseHung()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-network", action="store_true", help="skip the cases that need a socket")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--case-timeout", type=int, default=60,
                        help="stop a case that hangs after this many seconds (it counts as not answered cleanly)")
    args = parser.parse_args(argv)

    cases = all_cases()
    hole = None
    if not args.no_network:
        hole = Blackhole()
        cases += network_cases(hole.port, closed_port())
    cases = [case for case in cases if args.only in case.name]

    signal.signal(signal.SIGALRM, _hung)
    rows = []
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            signal.alarm(args.case_timeout)
            try:
                outcome = run_case(case, tmp)
            except CaseHung:
                rows.append((case.name, case.origin, "BAD: hung, stopped at %d s" % args.case_timeout,
                             time.monotonic() - started, 0, 0))
                continue
            except Exception as exc:  # pylint: disable=broad-except  # e.g. an older checkout without a patched name
                rows.append((case.name, case.origin, "BAD: runner error %s" % type(exc).__name__, 0.0, 0, 0))
                continue
            finally:
                signal.alarm(0)
        problems = judge(outcome)
        verdict = ("refused" if case.expect == "refused" else "masked") if not problems else \
            "BAD: " + problems[0].splitlines()[0][:70]
        rows.append((case.name, case.origin, verdict, outcome.seconds, len(outcome.files_changed),
                     len(outcome.writes)))
    if hole:
        hole.close()

    width = max(len(row[0]) for row in rows)
    print("%-*s  %-5s  %-9s  %7s  %5s  %5s" % (width, "input", "from", "outcome", "seconds", "files", "writes"))
    for name, origin, verdict, seconds, files, writes in rows:
        print("%-*s  %-5s  %-9s  %7.2f  %5d  %5d" % (width, name, origin, verdict, seconds, files, writes))
    by_outcome = collections.Counter("clean" if not row[2].startswith("BAD") else "bad" for row in rows)
    by_origin = collections.Counter(row[1] for row in rows)
    print()
    print("%d inputs (%d from the issue, %d added): %d answered cleanly, %d not; slowest %.1f s, total %.1f s; "
          "%d files changed, %d lab writes" % (
              len(rows), by_origin["issue"], by_origin["own"], by_outcome["clean"], by_outcome["bad"],
              max(row[3] for row in rows), sum(row[3] for row in rows), sum(row[4] for row in rows),
              sum(row[5] for row in rows)))
    return 1 if by_outcome["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
