"""Shared fixtures for the integration suite: the environment the collection runs in."""
from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# ---- reading ansible-playbook's output (the one parser every test uses) -------------------------------------------
TASK_RE = re.compile(r"^TASK \[(?P<name>.+?)\] \*+")
RECAP_RE = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                      r"\s+failed=(?P<failed>\d+)(?:\s+skipped=(?P<skipped>\d+))?", re.MULTILINE)


class ProcessSampler:
    """Samples the argv and environment of every descendant of this test process (ansible-playbook, its workers,
    helm, kubectl, ...) every ``interval`` seconds while it runs: a secret on a command line or in a child's
    environment is readable there, by any local user for argv."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.argv: set = set()
        self.environ: set = set()
        self.pids: set = set()
        self._root = os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list:
        parents = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/stat" % pid, "rb") as handle:
                        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ")"
                        parents[int(pid)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        found, frontier = [], [self._root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            found += children
            frontier += children
        return found

    def _run(self):
        while not self._stop.is_set():
            for pid in self._descendants():
                self.pids.add(pid)
                for name, into in (("cmdline", self.argv), ("environ", self.environ)):
                    try:
                        with open("/proc/%d/%s" % (pid, name), "rb") as handle:
                            into.add(handle.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def changed_tasks(output: str) -> set:
    """The names of the tasks that reported changed (or would have, in check mode), from the default callback's
    output: a task's "changed: [host]" line (also "changed: [host] => (item=...)") under its "TASK [name]" header."""
    changed, task = set(), None
    for line in output.splitlines():
        match = TASK_RE.match(line)
        if match:
            task = match.group("name")
        elif line.startswith("changed: [") and task:
            changed.add(task)
    return changed


def recap(output: str, host: str | None = None) -> dict:
    """The last PLAY RECAP's counters as ints (ok, changed, unreachable, failed, skipped): of ``host``, or summed
    over its hosts. Fails the test, with the output's end, when the run printed no recap (for that host)."""
    lines = [m for m in RECAP_RE.finditer(output[output.rfind("PLAY RECAP"):]) if host is None or m.group("host") == host]
    assert "PLAY RECAP" in output and lines, "no PLAY RECAP%s in:\n%s" % (" for %s" % host if host else "", output[-3000:])
    totals: dict = {}
    for line in lines:
        for key, value in line.groupdict().items():
            if key != "host" and value is not None:
                totals[key] = totals.get(key, 0) + int(value)
    return totals


def _hypothesis_state_under_cache():
    """Hypothesis keeps its example database in the checkout's ignored .cache/, not in a .hypothesis/
    at the root that `ansible-galaxy collection build` would ship."""
    from hypothesis import configuration, settings  # pylint: disable=import-outside-toplevel
    from hypothesis.database import DirectoryBasedExampleDatabase  # pylint: disable=import-outside-toplevel
    home = REPO_ROOT / ".cache" / "hypothesis"
    configuration.set_hypothesis_home_dir(home)
    settings.register_profile("circleci.server", database=DirectoryBasedExampleDatabase(str(home / "examples")))
    settings.load_profile("circleci.server")


_hypothesis_state_under_cache()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """pytest-ansible, when galaxy.yml is in the working directory, links the checkout into ./collections/ and
    points ANSIBLE_COLLECTIONS_PATH there (without the dependencies in .cache/collections): ask it to use the
    ANSIBLE_COLLECTIONS_PATH of hacking/env.sh as it is. Runs before the plugin's own pytest_configure."""
    if hasattr(config.option, "ansible_unit_inject_only"):
        config.option.ansible_unit_inject_only = True


# The test files that take longest, longest first: the integration stage (hacking/test.sh: two xdist workers, whole
# files each, --no-loadscope-reorder) hands files out in collection order, so starting these first keeps the two
# workers from finishing minutes apart (longest processing time first). xdist's own order (most tests first) put
# one-test files of two or three minutes at the very end. Measured on 2026-12-06 (wall seconds under load: the
# reliability entries 780-1310, upgrade_path 717, preflight 636, the next 150-220); a file missing here runs after
# these, in collection order (tests/integration/test_longest_first.py checks that every path still exists).
LONGEST_FIRST = (
    "tests/integration/reliability/test_upgrade.py",
    "tests/integration/reliability/test_migrate_3_to_4.py",
    "tests/integration/reliability/test_upgrade_43.py",
    "tests/integration/reliability/test_install.py",
    "tests/integration/reliability/test_upgrade_219.py",
    "tests/integration/upgrade_path/test_upgrade_path.py",
    "tests/integration/preflight/test_preflight.py",
    "tests/integration/reliability/test_migrate_219_to_3.py",
    "tests/integration/upgrade_cloud/test_aws.py",
    "tests/integration/migrate_3_to_4/test_migrate_3_to_4.py",
    "tests/integration/upgrade_43/test_upgrade_playbook.py",
    "tests/integration/values_migrate/test_values_migrate.py",
    "tests/integration/nomad_roll/test_nomad_client_roll.py",
)


def pytest_collection_modifyitems(items):
    """The files of LONGEST_FIRST first, in its order; the tests of a file keep their order (a stable sort)."""
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


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
    # ansible's own state (local tmp, galaxy cache) in the checkout's .cache/, never in ~/.ansible.
    env.setdefault("ANSIBLE_HOME", str(REPO_ROOT / ".cache" / "ansible-home"))
    # The default remote tmp of local connections, ~/.ansible/tmp, ignores ANSIBLE_HOME.
    env.setdefault("ANSIBLE_REMOTE_TMP", os.path.join(env["ANSIBLE_HOME"], "tmp-remote"))
    env.setdefault("KUBECACHEDIR", str(REPO_ROOT / ".cache" / "kube-cache"))
    for kind in ("cache", "config", "data"):
        env.setdefault("HELM_%s_HOME" % kind.upper(), str(REPO_ROOT / ".cache" / "helm" / kind))
    env["PATH"] = "%s:%s" % (REPO_ROOT / ".venv" / "bin", env.get("PATH", ""))
    # The module runs' bytecode cache (hacking/python_startup/zipimport_bytecode_cache.py).
    env.setdefault("CIRCLECI_ZIPIMPORT_CACHE", str(REPO_ROOT / ".cache" / "zipimport-bytecode"))
    # The controller's import scan of the modules it sends (hacking/python_startup/ansiballz_scan_cache.py).
    env.setdefault("CIRCLECI_ANSIBALLZ_SCAN_CACHE", str(REPO_ROOT / ".cache" / "ansiballz-scan"))
    startup = str(REPO_ROOT / "hacking" / "python_startup")
    if startup not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (startup, env.get("PYTHONPATH")) if p)
    return env


@pytest.fixture(scope="session")
def run(ansible_env):
    def _run(*argv, check=True, cwd=REPO_ROOT, env=None, **kwargs):
        """Run a command in the collection's environment; ``env`` adds to (or overrides) it."""
        full_env = dict(ansible_env, **(env or {}))
        proc = subprocess.run(list(argv), cwd=cwd, env=full_env, capture_output=True, text=True, check=False, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
        return proc
    return _run


class RunningLab:
    """A lab brought up with the CLI, as an operator would: its lab.json, files and admin client."""

    def __init__(self, state: dict):
        from tests.lab.admin import LabClient
        self.state = state
        self.endpoints = state["endpoints"]
        self.files = state["files"]
        self.admin = LabClient(self.endpoints["admin"])

    @property
    def env(self) -> dict:
        """Environment variables that point kubectl, helm, the aws CLI and boto3 at this lab."""
        env = {"KUBECONFIG": self.files["kubeconfig"]}
        if "aws_env" in self.files:
            with open(self.files["aws_env"]) as handle:
                for line in handle:
                    key, value = line.replace("export ", "", 1).strip().split("=", 1)
                    env[key] = value.strip("'")
        return env


@pytest.fixture
def lab_up(tmp_path, run):
    """Bring a lab scenario up (``lab_up("aws-4.2")``); every lab started is taken down after the test."""
    started = []

    def _up(scenario, factor=100):
        state_dir = tmp_path / ("lab-" + scenario)
        run(str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "tests.lab", "up", scenario,
            "--state-dir", str(state_dir), "--factor", str(factor))
        started.append(state_dir)
        with open(state_dir / "lab.json") as handle:
            import json
            return RunningLab(json.load(handle))

    yield _up
    for state_dir in started:
        run(str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "tests.lab", "down", "--state-dir", str(state_dir), check=False)
