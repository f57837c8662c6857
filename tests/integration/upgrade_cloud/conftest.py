# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One lab per test module (bring-up is the slow part), started like ``lab_up`` does, and a playbook runner."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import REPO_ROOT, RunningLab, recap as output_recap

PLAYBOOK = str(Path(__file__).with_name("upgrade_cloud.yml"))
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")


@pytest.fixture(scope="module")
def module_lab(request, tmp_path_factory, ansible_env):
    """``module_lab`` parametrised indirectly with the scenario name; taken down after the module."""
    scenario = request.param
    state_dir = tmp_path_factory.mktemp("lab") / scenario
    subprocess.run([PYTHON, "-m", "tests.lab", "up", scenario, "--state-dir", str(state_dir), "--factor", "100"],
                   cwd=REPO_ROOT, env=ansible_env, check=True, capture_output=True, text=True)
    with open(state_dir / "lab.json") as handle:
        lab = RunningLab(json.load(handle))
    yield lab
    subprocess.run([PYTHON, "-m", "tests.lab", "down", "--state-dir", str(state_dir)], cwd=REPO_ROOT, env=ansible_env,
                   check=False, capture_output=True)


@pytest.fixture(scope="module")
def play(module_lab, run):
    """Run the roles' playbook against the module's lab; returns the process (``check=False`` to allow a failure)."""
    def _play(*args, check=True, extra=None):
        argv = ["ansible-playbook", "-i", module_lab.files["inventory"], PLAYBOOK, *args]
        for key, value in (extra or {}).items():
            argv += ["-e", "%s=%s" % (key, value)]
        return run(*argv, check=check, env=module_lab.env)
    return _play


def recap(proc) -> dict:
    """The recap of a finished run (the shared parser, tests/integration/conftest.py)."""
    return output_recap(proc.stdout)


def mutating(lab, service=None) -> list:
    return [r for r in lab.admin.requests(service) if r.get("method") not in ("GET", "HEAD")]
