"""The reliability suite: the same proofs over every playbook, one test module per playbook.

A playbook joins the suite with one new file, ``test_<playbook>.py`` (no shared edit), that says what is
particular to it as data, in a :class:`Playbook` named ``ENTRY``, and runs the shared proofs::

    from .suite import BadInput, Playbook, ReliabilityProofs, Step

    ENTRY = Playbook(...)

    class TestMyPlaybook(ReliabilityProofs):
        entry = ENTRY

One module = one lab (module-scoped fixtures, conftest.py) shared by all its cases, in this order:
1. the bad inputs that need the lab, each one ansible-playbook run, 3 at a time (a refused run writes nothing,
   so they can share the lab): each refused with its message; the lab's request log empty at the end;
2. ``--check --diff -vvvv`` the way AWX runs a job template (ansible-runner, every input a survey string in
   ``env/extravars``, credentials in the environment, no TTY): no failed event, changes planned, 0 mutating requests
   in the lab's request log, the operator's files unchanged (issue 17's proof, for every playbook of the suite);
3. the resume chain, N+1 runs for N mutating steps: run k meets a fault (403, permanent) at step k, so it
   stops there after resuming past steps 1..k-1; run N+1 has no fault and finishes. Each step's write must
   appear once (succeeded) in the log of the whole chain, and the tasks the runs changed must all have been
   named by the check run;
4. a re-run through the playbook's underscore alias as a collection playbook (circleci.server.foo_bar, which
   must import foo-bar.yml): changed=0, no write but the ones the entry allows;
5. canaries: every secret input's value (the entry says where they are) is searched in the -vvvv outputs of
   the check and last runs, every run's output, the argv and /proc/<pid>/environ of every child process
   sampled every 0.1 s during all the runs, and every file written under the runs' HOME, TMPDIR,
   ANSIBLE_HOME and the lab's state directory (0600 files the operator named excepted).
The bad inputs that do not need the lab are refused where they are refused in the playbook: the role
argument spec the playbook validates first (ansible's ArgumentSpecValidator on the same
meta/argument_specs.yml), or the filter the playbook normalises a value with (called in-process).
Figures go to .cache/reliability/<playbook>.json for tests/bench/bench_reliability.py (README's table).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

import pytest
import yaml

from ..conftest import REPO_ROOT, changed_tasks, recap

RESULTS_DIR = REPO_ROOT / ".cache" / "reliability"

# Where a bad input is refused (and so where the suite proves it).
SPEC = "spec"        # the playbook's first task: the inputs role's argument spec (types, choices)
FILTER = "filter"    # a filter the playbook passes the value through (e.g. circleci.server.server_version)
LAB = "lab"          # a check that reads the lab (preflight and later read-only checks): one playbook run


@dataclass(frozen=True)
class Step:
    """A mutating step, and the lab request that makes it fail: the first request of ``service`` whose method is
    one of ``methods`` and whose path matches ``path_regex`` (the lab's fault injection answers it 403)."""
    name: str
    service: str
    methods: tuple
    path_regex: str
    # Whether, across the chain, this step's write succeeds exactly once (some writes are legitimately repeated,
    # e.g. helm updating its previous release record; those say False and why).
    writes_once: bool = True


@dataclass(frozen=True)
class BadInput:
    """An input the playbook must refuse: ``overrides`` replace the good inputs; ``message`` (a regex) must be in
    the refusal. ``level`` says where it is refused (SPEC, FILTER or LAB, see above). ``files`` (name -> text) are
    written in the run's directory first; "{tmp}" in an override's value is that directory."""
    id: str
    overrides: dict
    message: str
    level: str = LAB
    files: dict = field(default_factory=dict)


@dataclass
class Playbook:
    name: str                       # as the README's table shows it
    playbook: str                   # path from the collection root
    alias: str                      # the underscore alias, as a collection playbook: the re-run runs it
    scenario: str                   # the lab scenario
    # The role argument spec (role, entry point) that refuses the SPEC-level bad inputs: the inputs role's entry point
    # of the playbook, or the first role's own spec where the playbook has none (its variables, then).
    argument_spec: tuple
    extra_vars: dict = field(default_factory=dict)       # added to the lab's inventory for every run
    # Secret inputs the operator gives (written to a 0600 file passed with -e @file); their values are canaries.
    secret_vars: dict = field(default_factory=dict)
    # Secret inputs: (lab file key, YAML key) pairs whose values are canaries (e.g. the lab's random registry
    # password in registry-credentials.yml, which the inventory's group_vars give the playbook) ...
    secret_lab_vars: tuple = ()
    values_file_secrets: bool = False    # ... the secret-looking keys of the lab's values file ...
    secret_lab_files: tuple = ()         # ... the key material (longest line) of secret files the lab made ...
    extra_canaries: tuple = ()           # ... other secret strings the lab planted ...
    lab_canaries: Optional[Callable] = None  # ... and those read from the lab before the first run: (lab) -> list.
    # Files the operator named (lab file keys) that may hold secrets, when 0600 (their 0600 backups too).
    operator_files: tuple = ()
    # Directories the operator named for the playbook's files ("{tmp}": the runs' directory): its 0600 files may hold
    # secrets (e.g. migrate-3-to-4's 4.0 values file in circleci_work_dir).
    operator_dirs: tuple = ()
    scan_lab_dirs: tuple = ()            # lab file keys of more directories the runs write in (e.g. the box's root)
    mutating_steps: tuple = ()           # in the order the playbook takes them
    rerun_allowed_writes: tuple = ()     # regexes of "METHOD path" a re-run after success may still send
    bad_inputs: tuple = ()
    # A filter the FILTER-level bad inputs go through: (callable, the variable the filter names in its message).
    version_filter: Optional[Callable] = None
    # Checks particular to the playbook, asserting: after the check run (runner, its output), and after the
    # chain's last run (lab, that run's output: the end state and the summary).
    after_check: Optional[Callable] = None
    verify: Optional[Callable] = None
    rerun_overrides: dict = field(default_factory=dict)  # the re-run's inputs differ so (e.g. no values file)
    # The check run's survey answers that differ from the other runs' (e.g. "" for a question left unanswered).
    awx_extravars: dict = field(default_factory=dict)
    # The end-to-end bad inputs as ONE run, one inventory host per bad input (``-e circleci_hosts=all``), for a
    # playbook whose preflight lists every problem before it stops (all hosts then fail at the same task).
    bad_inputs_as_hosts: bool = False
    # Before any run: (lab, run) -> None, e.g. what a bad input needs in the lab.
    prepare: Optional[Callable] = None
    # Defects the suite found that the playbook's owner has not fixed yet: {proof: what fails}. That proof then runs
    # as a strict xfail: it must still fail, and turns into a failure the day it passes (drop the line then).
    # Proofs: "resume", "plan" (check mode named every change), "rerun", "end-state", "leaks".
    known_findings: dict = field(default_factory=dict)


def server_version_filter():
    """circleci.server.server_version, as the playbooks call it (the collection from .cache/collections)."""
    collections = str(REPO_ROOT / ".cache" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.circleci.server.plugins.filter.server_version import server_version  # pylint: disable=import-outside-toplevel
    return server_version


def bad_versions(variable: str) -> list:
    """Version strings every playbook's version filter must refuse (FILTER level), with its message."""
    message = re.escape(variable)
    return [
        BadInput("%s-prerelease" % variable, {variable: "4.3.9-rc1"}, message, FILTER),
        BadInput("%s-prefix" % variable, {variable: "rm-rf-4.3.9"}, message, FILTER),
        BadInput("%s-fullwidth-digits" % variable, {variable: "\uff14.\uff13.\uff19"}, message, FILTER),
        BadInput("%s-empty" % variable, {variable: ""}, message, FILTER),
        BadInput("%s-minor-only" % variable, {variable: "4.3"}, message, FILTER),
        BadInput("%s-float" % variable, {variable: 4.3}, message, FILTER),
        BadInput("%s-shell" % variable, {variable: "4.3.9; touch /tmp/pwned"}, message, FILTER),
    ]


def argument_spec(role: str, entry_point: str) -> dict:
    with open(REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["argument_specs"][entry_point]["options"]


def record_figures(playbook: str, **figures) -> None:
    """Merges figures into .cache/reliability/<playbook>.json, which tests/bench/bench_reliability.py prints."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / ("%s.json" % playbook)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(figures)
    path.write_text(json.dumps(current, indent=2, sort_keys=True))


def writes(log) -> list:
    return ["%s %s %s -> %s" % (r["service"], r["method"], r["path"], r.get("status")) for r in log]


def matches(step: Step, request: dict) -> bool:
    return (request["service"] == step.service and request["method"] in step.methods
            and re.search(step.path_regex, request["path"]) is not None)


def known_finding(request, entry: Playbook, proof: str) -> None:
    """A defect the entry records for this proof: the proof must still fail (strict xfail)."""
    if proof in entry.known_findings:
        request.applymarker(pytest.mark.xfail(strict=True, reason="%s: %s" % (entry.name, entry.known_findings[proof])))


class ReliabilityProofs:
    """The shared proofs; a test module subclasses it with ``entry = ENTRY`` (pytest collects Test* subclasses)."""

    entry: Playbook

    # ---- bad inputs ----------------------------------------------------------------------------------------------
    def test_bad_input_matrix_has_at_least_15_cases(self):
        assert len(self.entry.bad_inputs) >= 15, [b.id for b in self.entry.bad_inputs]
        assert len({b.id for b in self.entry.bad_inputs}) == len(self.entry.bad_inputs), "duplicate ids"
        assert any(b.level == LAB for b in self.entry.bad_inputs), "prove some refusals end to end"

    def test_bad_inputs_refused_by_the_argument_spec(self, good_inputs):
        """SPEC level: ansible's ArgumentSpecValidator on the inputs role's spec, as the playbook's first task runs
        it (validate_argument_spec), with the good inputs plus the bad one."""
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # pylint: disable=import-outside-toplevel
        spec = argument_spec(*self.entry.argument_spec)
        known = {name: good_inputs[name] for name in spec if name in good_inputs}
        assert not ArgumentSpecValidator(spec).validate(known).error_messages, "the good inputs must pass"
        problems = []
        cases = [b for b in self.entry.bad_inputs if b.level == SPEC]
        for bad in cases:
            errors = ArgumentSpecValidator(spec).validate(dict(known, **bad.overrides)).error_messages
            if not any(re.search(bad.message, error) for error in errors):
                problems.append("%s: %s" % (bad.id, errors or "accepted"))
        record_figures(self.entry.name, bad_inputs_spec_tried=len(cases), bad_inputs_spec_handled=len(cases) - len(problems))
        assert problems == []

    def test_bad_inputs_refused_by_the_version_filter(self):
        """FILTER level: the filter every version input goes through before anything reads the lab."""
        from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
        problems = []
        cases = [b for b in self.entry.bad_inputs if b.level == FILTER]
        for bad in cases:
            ((variable, value),) = bad.overrides.items()
            try:
                problems.append("%s: accepted as %r" % (bad.id, self.entry.version_filter()(value, variable)))
            except AnsibleFilterError as exc:
                if not re.search(bad.message, str(exc)):
                    problems.append("%s: %s" % (bad.id, exc))
        record_figures(self.entry.name, bad_inputs_filter_tried=len(cases), bad_inputs_filter_handled=len(cases) - len(problems))
        assert problems == []

    def test_bad_inputs_refused_end_to_end_before_any_write(self, refusals):
        """LAB level: one ansible-playbook run each on the module's lab (before any other run): each refused with
        its message, and the lab's request log holds no write at the end."""
        problems, written = refusals
        cases = [b for b in self.entry.bad_inputs if b.level == LAB]
        record_figures(self.entry.name, bad_inputs_lab_tried=len(cases),
                       bad_inputs_lab_handled=len(cases) - len(problems) if not written else 0)
        assert problems == []
        assert written == [], "a refused run wrote: %s" % written[:10]

    # ---- check mode, resume, re-run ------------------------------------------------------------------------------
    def test_check_mode_sends_no_write_and_leaves_the_operators_files(self, check_run, runner):
        proc, check_writes, changed_files = check_run
        record_figures(self.entry.name, check_mode_writes=len(check_writes))
        failed = [e["event_data"].get("res", {}).get("msg") for e in proc.events
                  if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
        assert proc.returncode == 0 and failed == [], (failed, proc.stdout[-3000:])
        assert recap(proc.stdout)["failed"] == 0, proc.stdout[-3000:]
        assert check_writes == [], "check mode wrote: %s" % check_writes[:10]
        assert changed_files == [], "check mode changed the operator's files"
        if self.entry.after_check:
            self.entry.after_check(runner, proc.stdout)

    def test_a_fault_at_each_mutating_step_then_the_next_run_resumes(self, request, chain):
        """Run k stops at step k (its fault fired, so it got past steps 1..k-1); the last run finishes; each step's
        write succeeded once in the whole chain's log."""
        known_finding(request, self.entry, "resume")
        problems = []
        for step, proc, fired in chain["faulted"]:
            if proc.returncode == 0 or not fired:
                problems.append("%s: rc=%d, fault fired=%s" % (step.name, proc.returncode, fired))
        for step in self.entry.mutating_steps:
            succeeded = [r for r in chain["log"] if matches(step, r) and (r.get("status") or 0) < 400]
            if step.writes_once and len(succeeded) != 1:
                problems.append("%s: its write succeeded %d times across the chain: %s" % (
                    step.name, len(succeeded), writes(succeeded)))
            if not succeeded:
                problems.append("%s: never written" % step.name)
        finished = chain["finished"]
        passed = len(self.entry.mutating_steps) - len({p.split(":")[0] for p in problems}) if finished.returncode == 0 else 0
        record_figures(self.entry.name, resumes_tried=len(self.entry.mutating_steps), resumes_passed=max(passed, 0))
        assert finished.returncode == 0, finished.stdout[-3000:]
        assert problems == []

    def test_check_mode_named_every_change_the_runs_made(self, request, check_run, chain):
        known_finding(request, self.entry, "plan")
        planned = changed_tasks(check_run[0].stdout)
        assert sum(check_run[0].stats.get("changed", {}).values()) > 0, "AWX's stats: the plan shows no change"
        made = set()
        for proc in [p for _s, p, _f in chain["faulted"]] + [chain["finished"]]:
            made |= changed_tasks(proc.stdout)
        assert made, "the runs changed nothing"
        assert made - planned == set(), "changed, but not in the plan: %s" % sorted(made - planned)

    def test_a_rerun_after_success_changes_nothing(self, request, rerun):
        known_finding(request, self.entry, "rerun")
        proc, rerun_writes = rerun
        assert proc.returncode == 0 and recap(proc.stdout)["failed"] == 0, proc.stdout[-3000:]
        assert recap(proc.stdout)["changed"] == 0, sorted(changed_tasks(proc.stdout))
        unexpected = [w for w in rerun_writes if not any(re.search(p, w) for p in self.entry.rerun_allowed_writes)]
        assert unexpected == [], "a re-run after success writes: %s" % unexpected

    def test_end_state(self, request, chain, lab):
        known_finding(request, self.entry, "end-state")
        assert self.entry.verify, "the entry says how the end state looks (verify)"
        self.entry.verify(lab, chain["finished"].stdout)

    # ---- secrets -------------------------------------------------------------------------------------------------
    def test_no_canary_in_output_argv_environment_or_files(self, request, leaks):
        known_finding(request, self.entry, "leaks")
        found, canaries, sampled = leaks
        record_figures(self.entry.name, canaries=len(canaries), leaks=len(found), processes_sampled=sampled)
        assert len(canaries) >= 2, "nothing to look for: %s" % canaries
        assert sampled > 10, "the process sampler saw nothing"
        assert found == [], found
