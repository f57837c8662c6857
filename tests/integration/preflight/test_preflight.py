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


def test_vault_not_migrated(run, preflight_labs, secret_vars):
    proc, facts = preflight(run, preflight_labs("aws-4.2-vault"), secret_vars)
    failed_with(proc, "Vault -> Tink migration not finished", "tink.enabled", "vault.internal", "StatefulSet vault")
    assert facts is None


def test_no_backup(run, preflight_labs, secret_vars):
    proc, _facts = preflight(run, preflight_labs("aws-4.2-nobackup"), secret_vars)
    assert failed_with(proc, "No Velero backup in namespace velero covers namespace circleci-server",
                       "velero backup create") == 2   # the sentence, and how to skip the gate knowingly


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


def test_kubernetes_1_30_for_target_4_3(run, preflight_labs, secret_vars):
    proc, _facts = preflight(run, preflight_labs("aws-4.2-k8s130"), secret_vars)
    failed_with(proc, "Kubernetes 1.30 is outside 1.26-1.28", "cannot start")


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
