# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight role against the lab: the aws-4.2 scenario passes for 4.3.9; every unsafe variant
fails with its own message; no run sends a single mutating request to the cluster."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from .conftest import REGISTRY_PASSWORD

PLAYBOOK = str(Path(__file__).resolve().parent / "preflight.yml")


def preflight(run, lab, secret_vars, target="4.3.9", check=False, **extra):
    result_file = lab.tmp / "result.json"
    if result_file.exists():
        result_file.unlink()
    argv = ["ansible-playbook", "-i", "localhost,", PLAYBOOK, "-e", "@%s" % secret_vars,
            "-e", json.dumps(dict({"preflight_target_version": target, "preflight_kubeconfig": lab.kubeconfig,
                                   "result_file": str(result_file)}, **extra))]
    if check:
        argv.append("--check")
    before = len(lab.mutations())
    proc = run(*argv, check=False)
    assert lab.mutations()[before:] == [], "the preflight wrote to the cluster"
    assert REGISTRY_PASSWORD not in proc.stdout + proc.stderr
    assert "lab-fake-tink-key-material" not in proc.stdout + proc.stderr
    facts = json.loads(result_file.read_text()) if result_file.exists() else None
    return proc, facts


def failed_with(proc, *words):
    assert proc.returncode != 0, proc.stdout[-3000:]
    text = proc.stdout + proc.stderr
    assert "Stop if any preflight check failed" in text, text[-3000:]
    message = re.search(r"Preflight found (\d+) problem\(s\)", text)
    assert message, text[-3000:]
    for word in words:
        assert word in text, "%r not in the output:\n%s" % (word, text[-3000:])
    return int(message.group(1))


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_aws_4_2_passes_for_4_3_9(run, preflight_labs, secret_vars, check):
    lab = preflight_labs("aws-4.2")
    proc, facts = preflight(run, lab, secret_vars, check=check)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["current"] == "4.2.7" and facts["failures"] == []
    assert facts["path"]["versions"] == ["4.3.9"] and facts["path"]["requires_tink"] is True
    assert facts["path"]["path"][0]["kubernetes_range"] == {"min": "1.26", "max": "1.28"}
    assert facts["kubernetes"].startswith("1.27.")
    assert facts["migrated"] is True and facts["backup"]["phase"] == "Completed"
    assert "Path: 4.2.7 -> 4.3.9" in proc.stdout


def test_gcp_4_2_passes_for_4_3_9(run, preflight_labs, secret_vars):
    proc, facts = preflight(run, preflight_labs("gcp-4.2"), secret_vars)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["path"]["versions"] == ["4.3.9"] and facts["failures"] == []


def test_backup_30_hours_old(run, preflight_labs, secret_vars):
    lab = preflight_labs("aws-4.2")
    original = lab.backup()["status"]
    old = datetime.now(timezone.utc) - timedelta(hours=30)
    lab.replace_backup(completionTimestamp=old.strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        proc, _facts = preflight(run, lab, secret_vars)
        failed_with(proc, "more than the maximum age 24h00m", "preflight_upgrade_without_recent_backup")
        # The gate opens only when asked by name, and says so.
        proc, facts = preflight(run, lab, secret_vars, preflight_upgrade_without_recent_backup=True)
        assert proc.returncode == 0 and "recent-backup check is SKIPPED" in proc.stdout
        assert facts["backup"] is None
        proc, facts = preflight(run, lab, secret_vars, preflight_backup_max_age="36h")
        assert proc.returncode == 0 and facts["backup"]["age"].startswith("30h")
    finally:
        lab.replace_backup(**original)


def test_partially_failed_backup(run, preflight_labs, secret_vars):
    lab = preflight_labs("aws-4.2")
    original = lab.backup()["status"]
    lab.replace_backup(phase="PartiallyFailed", errors=3)
    try:
        proc, _facts = preflight(run, lab, secret_vars)
        failed_with(proc, "phase is PartiallyFailed, not Completed", "3 error(s)")
    finally:
        lab.replace_backup(**original)


def test_older_patch_goes_through_the_last_patch_first(run, preflight_labs, secret_vars):
    lab = preflight_labs("aws-4.2.5")
    proc, facts = preflight(run, lab, secret_vars)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert facts["current"] == "4.2.5" and facts["path"]["versions"] == ["4.2.7", "4.3.9"]
    assert [hop["kind"] for hop in facts["path"]["path"]] == ["patch", "minor"]
    assert "Path: 4.2.5 -> 4.2.7 -> 4.3.9" in proc.stdout
    # A playbook that cannot do the patch hop itself says so.
    proc, _facts = preflight(run, lab, secret_vars, preflight_allow_patch_hop=False)
    failed_with(proc, "upgrade to 4.2.7 first")


def test_target_4_7_7(run, preflight_labs, secret_vars):
    proc, _facts = preflight(run, preflight_labs("aws-4.2"), secret_vars, target="4.7.7")
    assert failed_with(proc, "4.7.7 is a known-broken release", "target 4.7.15 instead") == 1


def test_target_lower_than_current(run, preflight_labs, secret_vars):
    proc, _facts = preflight(run, preflight_labs("aws-4.2"), secret_vars, target="4.2.5")
    assert failed_with(proc, "older than the installed 4.2.7", "restore the Velero backup") == 1


def test_a_rerun_at_the_target_has_nothing_to_do(run, preflight_labs, secret_vars):
    lab = preflight_labs("aws-4.2")
    original = lab.backup()["status"]
    lab.replace_backup(phase="Failed")   # an upgrade that is already done needs no backup
    try:
        proc, facts = preflight(run, lab, secret_vars, target="4.2.7")
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert facts["path"]["versions"] == [] and facts["backup"] is None
        assert "nothing to do" in proc.stdout
    finally:
        lab.replace_backup(**original)


def test_every_failure_is_listed_at_once(run, preflight_labs, secret_vars):
    proc, _facts = preflight(run, preflight_labs("aws-4.2-vault"), secret_vars, preflight_helm_binary="no-such-helm",
                             preflight_registry_password="")
    assert failed_with(proc, "Vault -> Tink", "helm 3", "Registry credentials are missing") >= 6


# ---- upgrade-4.3.yml refuses before its first change -------------------------------------------------------------
# The refusals of the whole playbook that need a scenario of their own, on the labs this module already runs; those
# on the plain aws-4.2 scenario are in the reliability suite (tests/integration/reliability/test_upgrade_43.py:
# emptied values file, target without a chart, registry login refused, jobs running with idle required). Each run must stop
# with its own message, send 0 mutating requests to the cluster, the clouds or the registry, leave the operator's
# values file as it was and leave no temp file (values, registry config) behind.
UPGRADE_PLAYBOOK = str(Path(__file__).resolve().parents[3] / "playbooks" / "upgrade-4.3.yml")
# moto's state is process-global and each lab's start resets it: the refusals that reach AWS run on the lab started
# last (its scenario: two VMs vm-service left running, one never finishing).
LIVE_AWS = "aws-4.2-leftover-vms"
REFUSALS = {
    "leftover-vms": (LIVE_AWS, {"vm_service_leftovers_wait_retries": 1, "vm_service_leftovers_wait_delay": 1},
                     "VM(s) tagged ManagedBy=circleci-vm-service are still there"),
    "wrong-sg": (LIVE_AWS, {"circleci_aws_vm_service_security_group_id": "sg-0123456789abcdef0"},
                 "Security group sg-0123456789abcdef0 of the vm-service machines was not found"),
    # the preflight's own messages, as the role-level tests used to check them
    "vault": ("aws-4.2-vault", {}, ["Vault -> Tink migration not finished", "tink.enabled", "vault.internal", "StatefulSet vault"]),
    "nobackup": ("aws-4.2-nobackup", {}, [
        "No Velero backup in namespace velero covers namespace circleci-server", "velero backup create", "Preflight found 2 problem(s)"]),
    "k8s130": ("aws-4.2-k8s130", {}, ["Kubernetes 1.30 is outside 1.26-1.28", "cannot start"]),
    # helm_upgrade alone must not take the operator's unmigrated file (the values step's check stops it)
    "tags-helm-upgrade": ("aws-4.2", {"@tags": "helm_upgrade"}, "is still in the shape of 4.2.7"),
}
# AWX and CI read the run as JSON (ansible.posix.json): one refusal runs with it.
JSON_OUTPUT = "k8s130"


def lab_env(lab) -> dict:
    env = {"KUBECONFIG": lab.kubeconfig}
    with open(lab.full.files["aws_env"]) as handle:
        for line in handle:
            key, value = line.replace("export ", "", 1).strip().split("=", 1)
            env[key] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def refused_runs(run, preflight_labs, tmp_path_factory):
    """Every refusal run, 4 at a time (they share labs and write nothing, so they may run together): the runs'
    outputs, temp directories, and every mutating request the labs received while they ran."""
    from concurrent.futures import ThreadPoolExecutor  # pylint: disable=import-outside-toplevel
    names = sorted({scenario for scenario, _e, _x in REFUSALS.values()} - {LIVE_AWS}) + [LIVE_AWS]
    labs = {name: preflight_labs(name) for name in names}
    if any(lab.full is None for lab in labs.values()):
        pytest.skip("needs the full lab (tests/lab/seed.py)")
    values_before = {name: Path(lab.full.files["values"]).read_bytes() for name, lab in labs.items()}
    before = {name: len(lab.mutations()) for name, lab in labs.items()}

    def refuse(refusal):
        scenario, extra, _expected = REFUSALS[refusal]
        extra = dict(extra)
        lab = labs[scenario]
        tmp = tmp_path_factory.mktemp(refusal)
        env = dict(lab_env(lab), TMPDIR=str(tmp))
        if refusal == JSON_OUTPUT:
            env["ANSIBLE_STDOUT_CALLBACK"] = "json"
        tags = ["--tags", extra.pop("@tags")] if "@tags" in extra else []
        extra_file = tmp / "extra.yml"
        extra_file.write_text(json.dumps(extra))
        extra_file.chmod(0o600)
        proc = run("ansible-playbook", "-i", lab.full.files["inventory"], UPGRADE_PLAYBOOK, "-e", "@%s" % extra_file,
                   *tags, env=env, check=False)
        return proc, tmp

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(sorted(REFUSALS), pool.map(refuse, sorted(REFUSALS))))
    mutations = {name: lab.mutations()[before[name]:] for name, lab in labs.items()}
    changed_values = [name for name, lab in labs.items() if Path(lab.full.files["values"]).read_bytes() != values_before[name]]
    return results, mutations, changed_values


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_upgrade_playbook_refuses_before_any_change(refused_runs, refusal):
    results, mutations, changed_values = refused_runs
    proc, tmp = results[refusal]
    scenario, _extra, expected = REFUSALS[refusal]
    assert proc.returncode != 0, proc.stdout[-3000:]
    for text in [expected] if isinstance(expected, str) else expected:
        assert text in proc.stdout, "%r not in:\n%s" % (text, proc.stdout[-4000:])
    if refusal == JSON_OUTPUT:
        assert json.loads(proc.stdout)["stats"]["localhost"]["failures"] == 1, proc.stderr[-2000:]
    # The runs of a lab ran together: none of them may have written anything.
    assert mutations[scenario] == [], "a refused run changed something: %s" % mutations[scenario]
    assert scenario not in changed_values, "the operator's values file changed"
    assert [p.name for p in tmp.iterdir() if p.name.startswith("circleci-server-")] == [], "temp files left"
    assert "Fix the values" not in proc.stdout


def test_a_failed_latest_revision_is_not_hidden_by_an_older_deployed_one(run, preflight_labs, secret_vars):
    """helm's notion of the release's state: after a failed upgrade the latest revision is failed, even though an
    older revision is still labelled deployed."""
    lab = preflight_labs("aws-4.2.5")
    if lab.full is None:
        pytest.skip("needs the full lab (tests/lab/seed.py)")
    from tests.lab.charts import chart_path  # pylint: disable=import-outside-toplevel
    # A permanent error on the first Deployment helm writes: the upgrade (not atomic) leaves revision 3 failed.
    lab.full.faults.add("kube", "*", r"/apis/apps/v1/namespaces/circleci-server/deployments", nth=1, status=422,
                        message="injected by the test")
    try:
        failed = run("helm", "upgrade", "circleci-server", chart_path("4.2.7"), "-n", "circleci-server", "--reuse-values",
                     "--kubeconfig", lab.kubeconfig, check=False)
    finally:
        lab.full.faults.clear()
    assert failed.returncode != 0, failed.stdout
    history = json.loads(run("helm", "history", "circleci-server", "-n", "circleci-server", "-o", "json",
                             "--kubeconfig", lab.kubeconfig).stdout)
    assert history[-1]["status"] == "failed" and any(entry["status"] == "deployed" for entry in history)
    proc, _facts = preflight(run, lab, secret_vars)
    failed_with(proc, "revision %d (circleci-server-4.2.7) is failed, not deployed" % history[-1]["revision"],
                "helm rollback circleci-server")


def test_messages_name_what_the_operator_set(run, preflight_labs, secret_vars, tmp_path):
    lab = preflight_labs("aws-4.2")
    proc, _facts = preflight(run, lab, secret_vars, preflight_release="no-such-release")
    failed_with(proc, 'No helm release "no-such-release"', "circleci_namespace and circleci_release_name")
    assert "preflight_release" not in proc.stdout
    missing = str(tmp_path / "no-such-kubeconfig")
    proc, _facts = preflight(run, lab, secret_vars, preflight_kubeconfig=missing)
    failed_with(proc, "The kubeconfig file %s (circleci_kubeconfig) does not exist" % missing)
    assert "Invalid kube-config" not in proc.stdout


def test_an_installed_3x_names_the_migration_playbook(run, tmp_path):
    """No cluster needed: the path check alone, as preflight runs it for a 3.x release."""
    playbook = tmp_path / "path.yml"
    playbook.write_text(json.dumps([{
        "name": "The path check of the preflight role", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [
            {"name": "Check the path from 3.4.6", "ansible.builtin.include_role": {
                "name": "circleci.server.preflight", "tasks_from": "0030-path.yml"},
             "vars": {"preflight_failures": [], "preflight_current_version": "3.4.6", "preflight_target_version": "4.3.9",
                      "preflight_kubernetes_version": "1.27.16", "preflight_kubernetes_git_version": ""}},
            {"name": "Show the failures", "ansible.builtin.debug": {"var": "preflight_failures"}},
        ]}]))
    proc = run("ansible-playbook", "-i", "localhost,", str(playbook))
    assert "playbooks/migrate-3-to-4.yml" in proc.stdout, proc.stdout[-3000:]
    assert "Upgrade the circleci.server collection" not in proc.stdout
