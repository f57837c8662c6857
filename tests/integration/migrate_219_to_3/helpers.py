"""What the migrate-2.19-to-3.yml tests share: one lab per test module, the playbook, and reading both sides.

Both sides are read through the commands the playbook runs: PostgreSQL with the playbook's own checksum script
(roles/migrate219_preflight/files/pg_table_checksums.sh) against the box's and the pod's real clusters, MongoDB
and the Deployments with kubectl. The reliability suite's entry (tests/integration/reliability/test_migrate_219_to_3.py) reads its lab with the same
class (``Lab.attached``).
"""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess

import yaml

from tests.lab.pg import CHECKSUM_SCRIPT, migrate219_utils, owner_account

from ..conftest import REPO_ROOT, RunningLab

PLAYBOOK = str(REPO_ROOT / "playbooks" / "migrate-2.19-to-3.yml")
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
VAULT_RESTORE_POD = "circleci-migrate219-vault-restore"  # the import's pod on Vault's claim


def scenario(name: str) -> dict:
    from tests.lab.scenarios import load_scenario  # pylint: disable=import-outside-toplevel
    return load_scenario(name)


def canaries(spec: dict) -> list:
    """Every secret of the scenario: the 3.x datastore passwords, the keys, Vault's unseal keys and root token."""
    overrides = spec["helm"]["values_overrides"]
    values = [overrides["postgresql"]["postgresqlPassword"], overrides["mongodb"]["auth"]["rootPassword"]]
    values += list(spec["box"]["keys"].values())
    values += re.findall(r": (\S+)", spec["box"]["vault_files"]["vault-init-out"])
    assert len(values) == 10 and all(v.startswith("canary-") for v in values), values
    return values


class Lab:
    """A migrate-2.19 lab brought up with the CLI for a whole test module."""

    def __init__(self, run, state_dir, name):
        self.run, self.state_dir, self.name = run, str(state_dir), name
        run(PYTHON, "-m", "tests.lab", "up", name, "--state-dir", self.state_dir, "--factor", "100")
        with open(os.path.join(self.state_dir, "lab.json"), encoding="utf-8") as handle:
            self.running = RunningLab(json.load(handle))
        self.files, self.admin = self.running.files, self.running.admin
        self.work_dir = os.path.join(os.path.dirname(self.state_dir), "work-" + name)
        os.makedirs(self.work_dir, mode=0o700, exist_ok=True)
        with open(self.files["inventory"], encoding="utf-8") as handle:
            self.vars = yaml.safe_load(handle)["all"]["vars"]

    @classmethod
    def attached(cls, running: RunningLab, work_dir: str = "") -> "Lab":
        """A lab already up (the reliability suite's): the same reads, no bring-up."""
        lab = cls.__new__(cls)
        lab.run, lab.state_dir, lab.name = None, running.state["state_dir"], running.state.get("scenario", "")
        lab.running, lab.files, lab.admin, lab.work_dir = running, running.files, running.admin, work_dir
        with open(lab.files["inventory"], encoding="utf-8") as handle:
            lab.vars = yaml.safe_load(handle)["all"]["vars"]
        return lab

    def down(self):
        self.run(PYTHON, "-m", "tests.lab", "down", "--state-dir", self.state_dir, check=False)

    def play(self, *extra, check=True):
        return self.run("ansible-playbook", "-i", self.files["inventory"], PLAYBOOK, "-e",
                        "circleci_work_dir=%s" % self.work_dir, *extra, env={"KUBECONFIG": self.files["kubeconfig"]},
                        check=check)

    def kubectl(self, *argv, stdin=None) -> str:
        proc = subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "kubectl"), "--kubeconfig", self.files["kubeconfig"],
                               "-n", self.vars["circleci_namespace"], *argv], input=stdin, capture_output=True,
                              text=True, check=True)
        return proc.stdout

    def configmap(self) -> dict:
        found = json.loads(self.kubectl("get", "configmaps", "-o", "json"))["items"]
        return next((c.get("data") or {} for c in found if c["metadata"]["name"] == "circleci-migrate-219"), None)

    def replicas(self) -> dict:
        items = json.loads(self.kubectl("get", "deployments", "-l", "layer=application", "-o", "json"))["items"]
        return {d["metadata"]["name"]: [d["spec"]["replicas"], d["status"].get("availableReplicas", 0)] for d in items}

    def pg_checksums(self, side: str) -> dict:
        """``{db: {table: [rows, md5]}}`` of the box's or the pod's real cluster, by the playbook's own script."""
        with open(self.files["migrate219_pg"], encoding="utf-8") as handle:
            cluster = json.load(handle)[side]
        env = {"PATH": "%s:/usr/bin:/bin" % cluster["bin"], "PGHOST": "127.0.0.1", "PGPORT": str(cluster["port"])}
        with open(CHECKSUM_SCRIPT, "rb") as handle:
            script = handle.read()
        if side == "pod":  # as the playbook reads it: in the pod, with the pod's password (never in this process tree)
            return migrate219_utils().parse_table_checksums(
                self.kubectl("exec", "-i", "postgresql-0", "--", "sh", "-s", stdin=script.decode()))
        account = owner_account()
        proc = subprocess.run(["/bin/sh", "-s"], input=script, env=env, capture_output=True, check=True,
                              preexec_fn=lambda: (os.setgid(account.pw_gid), os.setuid(account.pw_uid)))  # pylint: disable=subprocess-popen-preexec-fn
        return migrate219_utils().parse_table_checksums(proc.stdout.decode())

    def mongo_counts(self) -> dict:
        out = self.kubectl("exec", "mongodb-0", "--", "sh", "-c",
                           'mongo --quiet -u root -p "$MONGODB_ROOT_PASSWORD" --eval getCollectionNames')
        return json.loads(out)

    def journal(self) -> list:
        with open(self.files["migrate219_journal"], encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def restores(self, pod_prefix: str) -> int:
        return sum(1 for e in self.journal() if e["pod"].startswith(pod_prefix) and e["restore"] and e["code"] == 0)

    def box_state(self) -> dict:
        import urllib.request  # pylint: disable=import-outside-toplevel
        with urllib.request.urlopen(self.running.endpoints["box"] + "/v1/state", timeout=30) as response:  # nosec: loopback
            return json.loads(response.read())


def world_readable_files_containing(roots, needles) -> list:
    """Files under ``roots`` whose own mode lets others read them (o+r, whatever their directory) holding a needle."""
    found = []
    for root in roots:
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                try:
                    if os.path.islink(path) or not os.stat(path).st_mode & stat.S_IROTH:
                        continue
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                found += ["%s: %s" % (path, n) for n in needles if n.encode() in data]
    return found
