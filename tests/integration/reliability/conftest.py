"""Fixtures of the reliability suite (suite.py says what each proves): one lab per test module, the runs on it in a
fixed order (refusals, check, the resume chain, a re-run), a process sampler running across them, the leak scan."""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest
import yaml

from ..conftest import REPO_ROOT, ProcessSampler, RunningLab
from .suite import LAB, writes

SECRET_KEY = re.compile(r"(token|secret|password|keyset|cookie|key)(\.|$)", re.IGNORECASE)
SECRET_VAR = re.compile(r"(token|secret|password|license|key)$")  # not the usernames and client ids beside them
LAB_OWN_FILES = {"requests.jsonl", "lab.json", "lab.log", "datastores.jsonl"}


class SuiteLab(RunningLab):
    """A lab of the suite: its environment works for box labs too (no kubeconfig there)."""

    @property
    def env(self) -> dict:
        env = {"KUBECONFIG": self.files["kubeconfig"]} if "kubeconfig" in self.files else {}
        if "aws_env" in self.files:
            with open(self.files["aws_env"], encoding="utf-8") as handle:
                for line in handle:
                    key, value = line.replace("export ", "", 1).strip().split("=", 1)
                    env[key] = value.strip("'")
        return env

    def writes(self) -> list:
        """The mutating requests of the log, but Kubernetes server-side dry runs (dryRun=All: the API server
        validates and changes nothing; check mode uses them to show a real diff)."""
        return [r for r in self.admin.requests() if "dryRun=All" not in r["path"]]


class Runner:
    """Runs the entry's playbook on the lab in a HOME, TMPDIR and ANSIBLE_HOME of its own (so that every file a
    run writes is found), keeping every output for the leak scan."""

    def __init__(self, entry, lab, run, tmp: Path, ansible_env: dict):
        self.entry, self.lab, self._run, self.tmp, self.ansible_env = entry, lab, run, tmp, ansible_env
        self.home, self.tmpdir, self.ansible_home = tmp / "home", tmp / "tmp", tmp / "ansible-home"
        for directory in (self.home, self.tmpdir, self.ansible_home):
            directory.mkdir(parents=True, exist_ok=True)
        # "{tmp}" in a value: this runner's directory (e.g. where the operator keeps the playbook's files).
        self.extra_vars = {k: v.replace("{tmp}", str(tmp)) if isinstance(v, str) else v for k, v in entry.extra_vars.items()}
        self.vars_file = tmp / "vars.json"
        self.vars_file.write_text(json.dumps(self.extra_vars))
        # The operator's secrets file (0600), as a vault would hold them.
        self.secrets_file = tmp / "secrets.yml"
        with open(os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            yaml.safe_dump(dict(entry.secret_vars), handle)
        self.outputs: list = []
        self._canaries = None
        # What is there before the first run (the lab's own files): a file is "written" if new or changed since.
        self.before = self._snapshot()

    @property
    def env(self) -> dict:
        return dict(self.lab.env, HOME=str(self.home), TMPDIR=str(self.tmpdir), ANSIBLE_HOME=str(self.ansible_home))

    def play(self, *args, overrides: dict | None = None, name: str = "run", playbook: str | None = None):
        argv = ["ansible-playbook", "-i", self.lab.files["inventory"], "-e", "@%s" % self.vars_file,
                "-e", "@%s" % self.secrets_file]
        if overrides:
            override_file = self.tmp / ("override-%s.json" % re.sub(r"\W+", "-", name))
            override_file.write_text(json.dumps(overrides))
            os.chmod(override_file, 0o600)
            argv += ["-e", "@%s" % override_file]
        argv += [playbook or str(REPO_ROOT / self.entry.playbook), *args]
        return self.run_raw(*argv, name=name)

    def run_raw(self, *argv, name: str):
        proc = self._run(*argv, env=self.env, check=False)
        self.outputs.append((name, proc.stdout + proc.stderr))
        return proc

    def awx_check(self):
        """``--check --diff -vvvv`` the way AWX / Automation Controller runs a job template: ansible-runner, a private
        data directory, every input in ``env/extravars`` as a survey sends it (strings: "true", "1"; dictionaries as
        the job template's extra variables), the inventory as an inventory source gives it, credentials as
        environment variables, no TTY. Returns what ``play`` returns (returncode, stdout) and the JSON events."""
        data = self.tmp / "awx-check"
        (data / "env").mkdir(parents=True)
        extravars = {k: v if isinstance(v, (dict, list)) else json.dumps(v) if isinstance(v, bool) else str(v)
                     for k, v in dict(self.extra_vars, **self.entry.secret_vars, **self.entry.awx_extravars).items()}
        for name, content in (("extravars", extravars), ("envvars", self.env)):
            with open(os.open(data / "env" / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
                json.dump(content, handle)
        result = ansible_runner.run(private_data_dir=str(data), playbook=str(REPO_ROOT / self.entry.playbook),
                                    inventory=self.lab.files["inventory"], cmdline="--check --diff", verbosity=4,
                                    quiet=True, timeout=900, envvars=dict(self.ansible_env, **self.env))
        events = list(result.events)
        stdout = "\n".join(e.get("stdout", "") for e in events)
        self.outputs.append(("check (ansible-runner stdout)", stdout))
        self.outputs.append(("check (ansible-runner events)", json.dumps(events)))
        return AwxRun(0 if result.status == "successful" else (result.rc or 1), stdout, events, result.stats or {})

    def good_inputs(self) -> dict:
        with open(self.lab.files["vars"], encoding="utf-8") as handle:
            inputs = dict(yaml.safe_load(handle))
        for file_key, _var in self.entry.secret_lab_vars:
            with open(self.lab.files[file_key], encoding="utf-8") as handle:
                inputs.update(yaml.safe_load(handle))
        inputs.update(self.extra_vars)
        inputs.update(self.entry.secret_vars)
        return inputs

    def canaries(self) -> list:
        """Read once, before the first run (a run may delete where they came from)."""
        if self._canaries is None:
            self._canaries = self._read_canaries()
        return self._canaries

    def _read_canaries(self) -> list:
        found = [v for k, v in self.entry.secret_vars.items() if isinstance(v, str) and len(v) >= 8 and SECRET_VAR.search(k)]
        if self.entry.lab_canaries:
            found += list(self.entry.lab_canaries(self.lab))
        for file_key, var in self.entry.secret_lab_vars:
            with open(self.lab.files[file_key], encoding="utf-8") as handle:
                found.append(yaml.safe_load(handle)[var])
        if self.entry.values_file_secrets:
            found += secret_values(self.lab.files["values"])
        for file_key in self.entry.secret_lab_files:
            with open(self.lab.files[file_key], encoding="utf-8") as handle:
                found.append(max(handle.read().splitlines(), key=len))
        return sorted(set(found + list(self.entry.extra_canaries)))

    def operator_files(self) -> set:
        # The operator's secrets file and the inventory of the bad inputs (the operator's too; both 0600).
        named = {str(self.lab.files[key]) for key in self.entry.operator_files}
        named |= {str(self.secrets_file), str(self.tmp / "bad-inputs-inventory.yml")}
        # AWX's private data directory: the survey answers and the credentials' environment (0600, AWX's own).
        named |= {str(self.tmp / "awx-check" / "env" / "extravars"), str(self.tmp / "awx-check" / "env" / "envvars")}
        named |= {str(self.lab.files[key]) for key, _var in self.entry.secret_lab_vars}
        named.add(str(Path(self.lab.files["inventory"]).parent / "group_vars" / "all" / "registry.yml"))
        return named

    def operator_dirs(self) -> list:
        return [d.replace("{tmp}", str(self.tmp)) for d in self.entry.operator_dirs]

    def _snapshot(self) -> dict:
        """path -> (mtime_ns, size) of the regular files under the runs' directories, the lab's state directory and
        the entry's other lab directories."""
        files = {}
        roots = [self.tmp, Path(self.lab.state["state_dir"])] + [Path(self.lab.files[key]) for key in self.entry.scan_lab_dirs]
        for root in roots:
            for dirpath, _dirs, names in os.walk(root):
                for name in names:
                    path = os.path.join(dirpath, name)
                    try:
                        stat = os.lstat(path)
                    except OSError:
                        continue
                    if not os.path.islink(path):
                        files[path] = (stat.st_mtime_ns, stat.st_size)
        return files

    def written_files(self) -> list:
        """Files new or changed since the runner was made (before the first run)."""
        return [path for path, state in self._snapshot().items() if self.before.get(path) != state]

    def leaks(self, sampler: ProcessSampler) -> list:
        """Where a canary was found: "<canary> in <where>". 0600 files the operator named (and their 0600
        backups, <name>.<suffix>) may hold them."""
        found = []
        canaries = self.canaries()
        allowed = self.operator_files()
        for canary in canaries:
            found += ["%s in the output of %s" % (canary, name) for name, text in self.outputs if canary in text]
            if any(canary in argv for argv in sampler.argv):
                found.append("%s in a process's argv" % canary)
            if any(canary in environ for environ in sampler.environ):
                found.append("%s in a process's environment" % canary)
        for path in self.written_files():
            if os.path.basename(path) in LAB_OWN_FILES:
                continue
            try:
                with open(path, "rb") as handle:
                    text = handle.read().decode(errors="replace")
                mode = os.stat(path).st_mode & 0o777
            except OSError:
                continue
            owned = mode == 0o600 and (any(path == f or path.startswith(f + ".") for f in allowed)
                                       or any(path.startswith(d + os.sep) for d in self.operator_dirs()))
            found += ["%s in file %s (mode %o)" % (c, path, mode) for c in canaries if c in text and not owned]
        return found


@dataclass
class AwxRun:
    returncode: int
    stdout: str
    events: list
    stats: dict


def secret_values(values_file) -> list:
    """The values of the secret-looking keys of a values file (strings of 8 characters or more)."""
    found = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for child_key, child in node.items():
                walk(child, "%s.%s" % (key, child_key))
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        elif isinstance(node, str) and len(node) >= 8 and SECRET_KEY.search(key):
            found.append(node)

    with open(values_file, encoding="utf-8") as handle:
        walk(yaml.safe_load(handle))
    return found


# ---- one lab per module, the runs in a fixed order --------------------------------------------------------------
@pytest.fixture(scope="module")
def entry(request):
    return request.module.ENTRY


@pytest.fixture(scope="module")
def lab(entry, run, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("lab-" + entry.scenario)
    python = str(REPO_ROOT / ".venv" / "bin" / "python")
    run(python, "-m", "tests.lab", "up", entry.scenario, "--state-dir", str(state_dir), "--factor", "100")
    with open(state_dir / "lab.json", encoding="utf-8") as handle:
        yield SuiteLab(json.load(handle))
    run(python, "-m", "tests.lab", "down", "--state-dir", str(state_dir), check=False)


@pytest.fixture(scope="module")
def sampler():
    sampling = ProcessSampler().start()
    yield sampling
    sampling.stop()


@pytest.fixture(scope="module")
# sampler: sampling from the first run on
def runner(entry, lab, run, tmp_path_factory, sampler, ansible_env):  # pylint: disable=unused-argument
    made = Runner(entry, lab, run, tmp_path_factory.mktemp("runs-" + entry.name), ansible_env)
    made.canaries()
    return made


@pytest.fixture(scope="module")
def good_inputs(runner):
    return runner.good_inputs()


def refusals_as_hosts(runner, cases) -> list:
    """The bad inputs as one run, one host each (their variables over the good ones): each host's failure message."""
    group = dict(runner.good_inputs(), ansible_connection="local",
                 ansible_python_interpreter=str(REPO_ROOT / ".venv" / "bin" / "python"))
    hosts = {}
    for bad in cases:
        directory = runner.tmp / ("bad-input-" + bad.id)
        directory.mkdir()
        for name, text in bad.files.items():
            (directory / name).write_text(text)
        hosts[re.sub(r"\W", "_", bad.id)] = {k: v.replace("{tmp}", str(directory)) if isinstance(v, str) else v
                                             for k, v in bad.overrides.items()}
    path = runner.tmp / "bad-inputs-inventory.yml"
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        yaml.safe_dump({"all": {"vars": group, "hosts": hosts}}, handle)
    proc = runner.run_raw("ansible-playbook", "-i", str(path), str(REPO_ROOT / runner.entry.playbook),
                          "-e", "circleci_hosts=all", "--forks", "16", name="bad inputs as hosts")
    failures = dict(re.findall(r"fatal: \[(\w+)\]: FAILED! => (\{.*\})", proc.stdout))
    problems = []
    for bad in cases:
        host = re.sub(r"\W", "_", bad.id)
        message = json.loads(failures[host]).get("msg", "") if host in failures else None
        if message is None:
            problems.append("%s: not refused" % bad.id)
        elif not re.search(bad.message, str(message)):
            problems.append("%s: refused without a message matching %r: %s" % (bad.id, bad.message, str(message)[:500]))
    return problems


@pytest.fixture(scope="module")
def refusals(entry, runner, run):
    """The LAB-level bad inputs on the pristine lab, 3 runs at a time or one run with a host each:
    (problems, writes the lab saw)."""
    if entry.prepare:
        entry.prepare(runner.lab, run)
    runner.lab.admin.clear_requests()
    cases = [b for b in entry.bad_inputs if b.level == LAB]
    if entry.bad_inputs_as_hosts:
        return refusals_as_hosts(runner, cases), writes(runner.lab.writes())

    def attempt(bad):
        directory = runner.tmp / ("bad-input-" + bad.id)
        directory.mkdir()
        for name, text in bad.files.items():
            (directory / name).write_text(text)
        overrides = {k: v.replace("{tmp}", str(directory)) if isinstance(v, str) else v for k, v in bad.overrides.items()}
        proc = runner.play(overrides=overrides, name="bad input " + bad.id)
        output = proc.stdout + proc.stderr
        if proc.returncode == 0:
            return "%s: accepted" % bad.id
        if not re.search(bad.message, output):
            tail = [line for line in proc.stdout.splitlines() if "fatal:" in line or "msg" in line][-3:]
            return "%s: refused without a message matching %r: %s" % (bad.id, bad.message, tail)
        return None

    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = [p for p in pool.map(attempt, cases) if p]
    return problems, writes(runner.lab.writes())


@pytest.fixture(scope="module")
# refusals: they run first, on the pristine lab
def check_run(runner, refusals):  # pylint: disable=unused-argument
    runner.lab.admin.clear_requests()
    before = {path: Path(path).read_bytes() for path in runner.operator_files() if os.path.isfile(path)}
    proc = runner.awx_check()
    changed = [path for path, data in before.items() if Path(path).read_bytes() != data]
    return proc, writes(runner.lab.writes()), changed


@pytest.fixture(scope="module")
def chain(entry, runner, check_run):  # pylint: disable=unused-argument
    """Run k meets a fault at step k; the last run has none. The whole chain's request log."""
    lab = runner.lab
    lab.admin.clear_requests()
    faulted = []
    for step in entry.mutating_steps:
        for method in step.methods:
            # A permanent error: a throttle or a 5xx would (rightly) be retried and the run would not stop.
            lab.admin.add_fault(step.path_regex, service=step.service, method=method, nth=1, status=403,
                                message="AccessDenied: injected by the reliability suite at %s" % step.name)
        proc = runner.play("--diff", name="chain run stopped at " + step.name)
        fired = any(f["fired"] for f in lab.admin.faults())
        lab.admin.clear_faults()
        faulted.append((step, proc, fired))
    finished = runner.play("--diff", "-vvvv", name="chain's last run")
    return {"faulted": faulted, "finished": finished, "log": lab.writes()}


@pytest.fixture(scope="module")
def rerun(runner, chain):  # pylint: disable=unused-argument
    runner.lab.admin.clear_requests()
    proc = runner.play(name="re-run", overrides=runner.entry.rerun_overrides, playbook=runner.entry.alias)
    return proc, ["%s %s" % (r["method"], r["path"]) for r in runner.lab.writes()]


@pytest.fixture(scope="module")
# check_run, chain, rerun: after every run
def leaks(runner, sampler, check_run, chain, rerun):  # pylint: disable=unused-argument
    return runner.leaks(sampler), runner.canaries(), len(sampler.pids)
