"""Lab bring-up and tear-down times per scenario, as a table.

    . hacking/env.sh; python tests/bench/bench_lab.py [--repeat 3] [scenario ...]

Each run is `python -m tests.lab up SCENARIO` then `down`, as an operator runs them, timed on the wall
clock; the lab's own `bringup_seconds` (inside the process, after imports) is shown beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SCENARIOS = ("aws-4.2", "gcp-4.2")


def _lab(*args):
    return subprocess.run([sys.executable, "-m", "tests.lab"] + list(args), cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True)


def measure(scenario: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as state_dir:
        began = time.monotonic()
        _lab("up", scenario, "--state-dir", state_dir)
        up = time.monotonic() - began
        with open(os.path.join(state_dir, "lab.json")) as handle:
            inside = json.load(handle)["bringup_seconds"]
        began = time.monotonic()
        _lab("down", "--state-dir", state_dir)
        down = time.monotonic() - began
    return {"up": up, "inside": inside, "down": down}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    args = parser.parse_args()
    print("load average: %.2f %.2f %.2f" % os.getloadavg())
    print("%-22s %6s %10s %10s %10s %10s" % ("scenario", "runs", "up median", "up max", "in-process", "down"))
    for scenario in args.scenarios:
        runs = [measure(scenario) for _attempt in range(args.repeat)]
        print("%-22s %6d %9.2fs %9.2fs %9.2fs %9.2fs" % (
            scenario, len(runs), statistics.median(r["up"] for r in runs), max(r["up"] for r in runs),
            statistics.median(r["inside"] for r in runs), statistics.median(r["down"] for r in runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
