# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""machine_provisioner_iam and the GCP branches of the other two roles on gcp-4.2 (one lab, tests in order)."""
from __future__ import annotations

import pytest
import requests

from .conftest import mutating, recap

pytestmark = pytest.mark.parametrize("module_lab", ["gcp-4.2"], indirect=True, scope="module")

EMAIL = "circleci-server-vm@acme-circleci-prod.iam.gserviceaccount.com"
OLD = "serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/vm-service]"
NEW = "serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/machine-provisioner]"
LAB = {"circleci_gcp_auth_kind": "none"}


def bindings(lab):
    url = "%s/v1/projects/acme-circleci-prod/serviceAccounts/%s:getIamPolicy" % (lab.endpoints["gcp"], EMAIL)
    policy = requests.post(url, json={}, timeout=10).json()
    return {b["role"]: sorted(b["members"]) for b in policy.get("bindings", [])}


def test_check_diff_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play("--check", "--diff", extra=LAB)
    assert recap(proc)["failed"] == 0
    assert mutating(module_lab) == []
    assert '-            "%s"' % OLD in proc.stdout and '+            "%s"' % NEW in proc.stdout
    assert "gcp-firewall-2376" in proc.stdout and "gcp-leftover-vms" in proc.stdout


def test_fault_on_set_policy_then_rerun_converges(module_lab, play):
    module_lab.admin.add_fault(r"setIamPolicy", service="gcp", method="POST", status=403, message="injected denial")
    failed = play(extra=LAB, check=False)
    assert failed.returncode != 0 and "Failed to update the IAM policy of service account" in failed.stdout
    assert bindings(module_lab)["roles/iam.workloadIdentityUser"] == [OLD]
    module_lab.admin.clear_faults()
    proc = play("--diff", extra=LAB)
    assert recap(proc)["changed"] == 1
    assert bindings(module_lab) == {"roles/iam.workloadIdentityUser": [NEW], "roles/iam.serviceAccountTokenCreator": ["group:sre@acme.example"]}


def test_second_run_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    assert recap(play(extra=LAB))["changed"] == 0
    assert mutating(module_lab) == []
