"""What the upgrade-2.19.yml tests share: running the playbook against a box-2.19 lab, and reading the lab."""
from __future__ import annotations

import json
import os
import re
import threading
import urllib.request

from ..conftest import REPO_ROOT

PLAYBOOK = str(REPO_ROOT / "playbooks" / "upgrade-2.19.yml")
TASK_RE = re.compile(r"^TASK \[(?P<name>.+?)\] \*+$")


def lab_env(lab) -> dict:
    """The AWS environment of the lab (a box lab has no cluster, so no kubeconfig)."""
    env = {}
    with open(lab.files["aws_env"], encoding="utf-8") as handle:
        for line in handle:
            key, value = line.replace("export ", "", 1).strip().split("=", 1)
            env[key] = value.strip("'")
    return env


def play(run, lab, *extra, check=True):
    """ansible-playbook upgrade-2.19.yml with the lab's inventory (the services box over SSH) and AWS env."""
    return run("ansible-playbook", "-i", lab.files["inventory"], PLAYBOOK, *extra, env=lab_env(lab), check=check)


def box_state(lab) -> dict:
    with urllib.request.urlopen(lab.endpoints["box"] + "/v1/state", timeout=30) as response:  # nosec: loopback
        return json.loads(response.read())


def changed_tasks(output: str) -> set:
    changed, task = set(), None
    for line in output.splitlines():
        match = TASK_RE.match(line)
        if match:
            task = match.group("name")
        elif line.startswith("changed: [") and task:
            changed.add(task)
    return changed


class ArgvSampler:
    """Samples every process's command line while a block runs (a secret must never be in one)."""

    def __init__(self):
        self.seen: set = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as handle:
                            self.seen.add(handle.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            self._stop.wait(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def files_containing(roots, needle: str) -> list:
    """Every regular file under ``roots`` whose bytes contain ``needle``."""
    found = []
    for root in roots:
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                try:
                    if os.path.isfile(path) and not os.path.islink(path):
                        with open(path, "rb") as handle:
                            if needle.encode() in handle.read():
                                found.append(path)
                except OSError:
                    pass
    return found
