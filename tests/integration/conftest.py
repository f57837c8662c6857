"""Shared fixtures for the integration suite: the environment the collection runs in."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ansible_env():
    """The environment of hacking/env.sh, so tests run ansible commands exactly as `make test` does."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".cache" / "collections"),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_PYTHON_INTERPRETER=str(REPO_ROOT / ".venv" / "bin" / "python"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="true",
    )
    env["PATH"] = "%s:%s" % (REPO_ROOT / ".venv" / "bin", env.get("PATH", ""))
    return env


@pytest.fixture(scope="session")
def run(ansible_env):
    def _run(*argv, check=True, cwd=REPO_ROOT, **kwargs):
        proc = subprocess.run(list(argv), cwd=cwd, env=ansible_env, capture_output=True, text=True, check=False, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        return proc
    return _run
