"""Bench: upgrade.yml over the whole path in the lab, 4.2.7 -> the newest release, and where its time goes.

    . hacking/env.sh && python -m tests.bench.bench_upgrade_path [--scenario aws-4.2] [--no-mongodb] [--no-postgresql]

Brings a lab up, runs upgrade.yml once (the data-store opt-ins on, so the MongoDB 3.6 -> 7.0 chain and the
PostgreSQL 12 -> 14 move run too, unless --no-mongodb / --no-postgresql), timestamps every task as
ansible-playbook prints it, and sorts the time into:

- helm waits: ``helm upgrade --wait --atomic`` and the readiness polls after it (role helm_upgrade);
- MongoDB chain: image rollouts and featureCompatibilityVersion steps (role mongodb_upgrade);
- PostgreSQL move: the counts, the dump, the new image, the restore, the comparison (role postgresql_upgrade);
- our own steps: everything else (preflight, the hop table, values hops, cloud roles, release diffs, summary).

It prints the wall time of the whole path, the split, and the time per hop. The lab answers at once (its
controllers converge on each write), so "helm waits" here is helm's own work and polling, not a real
cluster's rollout; on a real cluster the waits dominate. Timings on a shared machine are inflated by its load.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TASK_RE = re.compile(r"^TASK \[(?P<name>.+?)\] \*+$")
HOP_RE = re.compile(r"^TASK \[circleci\.server\.upgrade_hop : Hop (?P<hop>[\d.]+ -> [\d.]+)\]")
OVERRIDES = {"4.7": "1.27-1.33", "4.8": "1.27-1.35", "4.9": "1.27-1.35", "4.10": "1.27-1.35"}


def category(task: str) -> str:
    if task.startswith("circleci.server.helm_upgrade :") and ("Upgrade the release" in task or "Wait until" in task):
        return "helm waits"
    if task.startswith("circleci.server.mongodb_upgrade :"):
        return "MongoDB chain"
    if task.startswith("circleci.server.postgresql_upgrade :"):
        return "PostgreSQL move"
    return "our own steps"


def run_playbook(lab_dir: Path, env: dict, mongodb: bool, postgresql: bool) -> tuple:
    extra = lab_dir / "bench-vars.yml"
    extra.write_text(yaml.safe_dump({"circleci_kubernetes_overrides": OVERRIDES, "circleci_nomad_terraform_version": "4.10.0",
                                     "circleci_work_dir": str(lab_dir / "work"),
                                     "circleci_upgrade_mongodb": mongodb, "circleci_upgrade_postgresql": postgresql}))
    argv = ["ansible-playbook", "-i", str(lab_dir / "inventory.yml"), str(REPO_ROOT / "playbooks" / "upgrade.yml"),
            "-e", "@%s" % extra]
    began, children = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    tasks, hop, current = [], None, None
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        now = time.monotonic() - began
        match = TASK_RE.match(line.rstrip())
        if match:
            if current:
                current["end"] = now
            hop_match = HOP_RE.match(line)
            if hop_match:
                hop = hop_match.group("hop")
            current = {"name": match.group("name"), "start": now, "end": now, "hop": hop}
            tasks.append(current)
        elif line.startswith("PLAY RECAP") and current:
            current["end"] = now
            current = None
    returncode = proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return time.monotonic() - began, cpu, tasks, returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--scenario", default="aws-4.2")
    parser.add_argument("--no-mongodb", action="store_true", help="leave MongoDB alone (the run stops before 4.9)")
    parser.add_argument("--no-postgresql", action="store_true", help="leave PostgreSQL on 12 (4.10 only recommends 14)")
    parser.add_argument("--top", type=int, default=0, help="also print the N task names that took longest in all")
    args = parser.parse_args()
    python = str(REPO_ROOT / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-path-") as tmp:
        lab_dir = Path(tmp) / "lab"
        subprocess.run([python, "-m", "tests.lab", "up", args.scenario, "--state-dir", str(lab_dir)], cwd=REPO_ROOT,
                       check=True, capture_output=True)
        try:
            state = json.loads((lab_dir / "lab.json").read_text())
            env = dict(os.environ, KUBECONFIG=state["files"]["kubeconfig"], HOME=tmp)
            if "aws_env" in state["files"]:
                for line in Path(state["files"]["aws_env"]).read_text().splitlines():
                    key, value = line.replace("export ", "", 1).strip().split("=", 1)
                    env[key] = value.strip("'")
            wall, cpu, tasks, returncode = run_playbook(lab_dir, env, not args.no_mongodb, not args.no_postgresql)
        finally:
            subprocess.run([python, "-m", "tests.lab", "down", "--state-dir", str(lab_dir)], cwd=REPO_ROOT,
                           check=False, capture_output=True)
    totals, per_hop = {}, {}
    for task in tasks:
        seconds = task["end"] - task["start"]
        totals[category(task["name"])] = totals.get(category(task["name"]), 0.0) + seconds
        if task["hop"]:
            per_hop.setdefault(task["hop"], {}).setdefault(category(task["name"]), 0.0)
            per_hop[task["hop"]][category(task["name"])] += seconds
    print("upgrade.yml %s -> newest: wall %.1f s, CPU %.1f s (ansible-playbook and its children), exit %d, %d tasks" % (
        args.scenario, wall, cpu, returncode, len(tasks)))
    for name in ("helm waits", "MongoDB chain", "PostgreSQL move", "our own steps"):
        print("  %-14s %7.1f s  %5.1f %%" % (name, totals.get(name, 0.0), 100.0 * totals.get(name, 0.0) / max(wall, 1e-9)))
    print("per hop (s):  %-18s %10s %10s %10s %10s" % ("hop", "helm", "mongodb", "postgresql", "own"))
    for hop, split in per_hop.items():
        cells = tuple(split.get(name, 0.0) for name in ("helm waits", "MongoDB chain", "PostgreSQL move", "our own steps"))
        print("              %-18s %10.1f %10.1f %10.1f %10.1f" % ((hop,) + cells))
    if args.top:
        by_name = {}
        for task in tasks:
            seconds, count = by_name.get(task["name"], (0.0, 0))
            by_name[task["name"]] = (seconds + task["end"] - task["start"], count + 1)
        print("slowest task names (s, times run):")
        for name, (seconds, count) in sorted(by_name.items(), key=lambda item: -item[1][0])[:args.top]:
            print("  %7.1f %4d  %s" % (seconds, count, name))
    return returncode


if __name__ == "__main__":
    sys.exit(main())
