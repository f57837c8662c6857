"""How long upgrade-4.3.yml leaves CircleCI Server without a working VM provider, from the lab's request log.

    . hacking/env.sh; python tests/bench/bench_upgrade_window.py [--scenario aws-4.2] [--ref GIT_REV] [--repeat N]

The window opens with the first disruptive call (the IRSA trust policy or the Workload Identity binding moved
away from vm-service: 4.2's vm-service can no longer start VMs) and closes when the release is ready (helm's
last write to the release's Secret, after its wait). The table shows, in wall seconds: first mutating request
of the run -> disruptive call, disruptive call -> helm's first write, and disruptive call -> release ready.

``--ref`` runs the playbook and roles of another commit (``git archive`` into a temp collection), for the
before/after figure; a ref older than the registry login in every check is run against the lab's chart
directory (``--directory``), as its roles would fail on the registry. Each run brings a fresh lab up.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.path.join(REPO_ROOT, ".venv", "bin", "python")
COLLECTIONS = os.path.join(REPO_ROOT, ".cache", "collections", "ansible_collections")
DISRUPTIVE = ("iam/UpdateAssumeRolePolicy", ":setIamPolicy")


def window(entries: list[dict], release: str = "circleci-server") -> dict:
    """The figures of one run's request log (entries as the lab's admin /requests returns them)."""
    entries = sorted(entries, key=lambda entry: entry["wall_time"])
    disruptive = [e for e in entries if any(marker in e["path"] for marker in DISRUPTIVE)]
    if not entries or not disruptive:
        return {}
    opened = disruptive[0]["wall_time"]
    release_writes = [e for e in entries if e["service"] == "kube" and "/secrets" in e["path"]
                      and ("sh.helm.release.v1.%s." % release) in e["path"] and e["wall_time"] >= opened]
    helm_writes = [e for e in entries if e["service"] == "kube" and "/secrets" in e["path"] and e["wall_time"] >= opened]
    ready = (release_writes or helm_writes or [{"wall_time": opened}])[-1]["wall_time"]
    return {
        "first_write_to_disruptive": opened - entries[0]["wall_time"],
        "disruptive_to_helm": (helm_writes[0]["wall_time"] - opened) if helm_writes else float("nan"),
        "disruptive_to_ready": ready - opened,
        "requests": len(entries),
    }


def _collections_for(ref: str, workdir: str) -> str:
    """An ANSIBLE_COLLECTIONS_PATH whose circleci.server is ``ref``; the other collections are the checkout's."""
    export = os.path.join(workdir, "export")
    os.makedirs(export)
    archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", export], input=archive, check=True)
    root = os.path.join(workdir, "collections", "ansible_collections")
    os.makedirs(os.path.join(root, "circleci"))
    os.symlink(export, os.path.join(root, "circleci", "server"))
    for namespace in os.listdir(COLLECTIONS):
        if namespace != "circleci":
            os.symlink(os.path.join(COLLECTIONS, namespace), os.path.join(root, namespace))
    return os.path.dirname(root)


def measure(scenario: str, ref: str | None, directory: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-window-") as workdir:
        state_dir = os.path.join(workdir, "lab")
        env = dict(os.environ)
        playbook = os.path.join(REPO_ROOT, "playbooks", "upgrade-4.3.yml")
        if ref:
            env["ANSIBLE_COLLECTIONS_PATH"] = _collections_for(ref, workdir)
            playbook = os.path.join(workdir, "export", "playbooks", "upgrade-4.3.yml")
        subprocess.run([PYTHON, "-m", "tests.lab", "up", scenario, "--state-dir", state_dir], cwd=REPO_ROOT, check=True,
                       capture_output=True)
        try:
            with open(os.path.join(state_dir, "lab.json")) as handle:
                state = json.load(handle)
            env["KUBECONFIG"] = state["files"]["kubeconfig"]
            if "aws_env" in state["files"]:
                with open(state["files"]["aws_env"]) as handle:
                    for line in handle:
                        key, value = line.replace("export ", "", 1).strip().split("=", 1)
                        env[key] = value.strip("'")
            argv = ["ansible-playbook", "-i", state["files"]["inventory"], playbook]
            if directory:
                argv += ["-e", "circleci_chart_repository=%s" % os.path.join(state_dir, "charts")]
            proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit("the playbook failed:\n%s" % proc.stdout[-3000:])
            from tests.lab.core import RequestLog  # pylint: disable=import-outside-toplevel
            return window(RequestLog.read(os.path.join(state_dir, "requests.jsonl")))
        finally:
            subprocess.run([PYTHON, "-m", "tests.lab", "down", "--state-dir", state_dir], cwd=REPO_ROOT, check=False,
                           capture_output=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--scenario", default="aws-4.2")
    parser.add_argument("--ref", help="a git revision whose playbook and roles to run (default: the checkout)")
    parser.add_argument("--directory", action="store_true", help="use the lab's chart directory, not its registry")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    sys.path.insert(0, REPO_ROOT)
    print("%-12s %-10s %10s %12s %12s %9s" % ("scenario", "ref", "write->iam", "iam->helm", "iam->ready", "requests"))
    for _run in range(args.repeat):
        figures = measure(args.scenario, args.ref, args.directory)
        print("%-12s %-10s %9.2fs %11.2fs %11.2fs %9d" % (
            args.scenario, (args.ref or "checkout")[:10], figures["first_write_to_disruptive"], figures["disruptive_to_helm"],
            figures["disruptive_to_ready"], figures["requests"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
