"""What the upgrade-2.19.yml tests share: running the playbook against a box-2.19 lab, and reading the lab."""
from __future__ import annotations

import json
import urllib.request

from ..conftest import REPO_ROOT

PLAYBOOK = str(REPO_ROOT / "playbooks" / "upgrade-2.19.yml")


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
