# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reliability suite's figures as one table: playbook x check-mode writes, canary leaks, resumes
passed/tried, bad inputs handled/tried (the README's "Reliability suite" section).

The suite (tests/integration/reliability/, one test_<playbook>.py per playbook) records its figures in
.cache/reliability/<playbook>.json as it runs; ``--run`` runs it first. A playbook without figures shows "not run".

    . hacking/env.sh
    python tests/bench/bench_reliability.py [--run]
"""
from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SUITE = ROOT / "tests" / "integration" / "reliability"
RESULTS = ROOT / ".cache" / "reliability"
COLUMNS = ("playbook", "check-mode writes", "leaks (canaries)", "resumes passed/tried", "bad inputs handled/tried")
LEVELS = ("spec", "filter", "lab")


def entries() -> list:
    """Every ENTRY of the suite's test modules, in file order."""
    found = []
    for path in sorted(SUITE.glob("test_*.py")):
        module = importlib.import_module("tests.integration.reliability.%s" % path.stem)
        if hasattr(module, "ENTRY"):
            found.append(module.ENTRY)
    return found


def _cell(figures: dict, *keys: str, fmt: str) -> str:
    if any(key not in figures for key in keys):
        return "not run"
    return fmt % tuple(figures[key] for key in keys)


def _bad_inputs(figures: dict) -> str:
    tried = [figures.get("bad_inputs_%s_tried" % level) for level in LEVELS]
    handled = [figures.get("bad_inputs_%s_handled" % level) for level in LEVELS]
    if None in tried or None in handled:
        return "not run"
    return "%d/%d (%s)" % (sum(handled), sum(tried), ", ".join(
        "%s %d" % (level, count) for level, count in zip(("spec", "filter", "end to end"), tried) if count))


def rows() -> list:
    table = []
    for entry in entries():
        path = RESULTS / ("%s.json" % entry.name)
        figures = json.loads(path.read_text()) if path.exists() else {}
        table.append((entry.name,
                      _cell(figures, "check_mode_writes", fmt="%d"),
                      _cell(figures, "leaks", "canaries", fmt="%d (%d)"),
                      _cell(figures, "resumes_passed", "resumes_tried", fmt="%d/%d"),
                      _bad_inputs(figures)))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--run", action="store_true", help="run tests/integration/reliability first")
    args = parser.parse_args()
    if args.run:
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadfile",
                        str(SUITE)], cwd=ROOT, check=False)
    table = rows()
    widths = [max(len(str(row[i])) for row in table + [COLUMNS]) for i in range(len(COLUMNS))]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)) + " |")
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for row in table:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
