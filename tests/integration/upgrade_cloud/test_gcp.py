# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""machine_provisioner_iam and the GCP branches of the other two roles on gcp-4.2-leftover-vms (gcp-4.2 plus a VM
vm-service left running; one lab, tests in order: the VM stops the run, then it is deleted and the rest converges)."""
from __future__ import annotations

import pytest
import requests

from .conftest import mutating, recap

pytestmark = pytest.mark.parametrize("module_lab", ["gcp-4.2-leftover-vms"], indirect=True, scope="module")
COMPUTE = "%s/compute/v1/projects/acme-circleci-prod"
LEFTOVER = "vm-service-l1-medium-3c9d"

EMAIL = "circleci-server-vm@acme-circleci-prod.iam.gserviceaccount.com"
OLD = "serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/vm-service]"
NEW = "serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/machine-provisioner]"
LAB = {"circleci_gcp_auth_kind": "none"}


def bindings(lab):
    url = "%s/v1/projects/acme-circleci-prod/serviceAccounts/%s:getIamPolicy" % (lab.endpoints["gcp"], EMAIL)
    policy = requests.post(url, json={}, timeout=10).json()
    return {b["role"]: sorted(b["members"]) for b in policy.get("bindings", [])}


def firewall_rules(lab):
    return sorted(rule["name"] for rule in requests.get(COMPUTE % lab.endpoints["gcp"] + "/global/firewalls", timeout=10).json()["items"])


def test_a_vm_vm_service_left_stops_the_run_before_any_change(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play("--tags", "vm_service_leftovers", check=False,
                extra=dict(LAB, vm_service_leftovers_wait_retries=1, vm_service_leftovers_wait_delay=1))
    assert proc.returncode != 0
    assert "1 VM(s) of vm-service are still there" in proc.stdout and "instances delete %s --zone us-east1-b" % LEFTOVER in proc.stdout
    assert mutating(module_lab) == []
    # The operator deletes it, as the message says.
    requests.delete(COMPUTE % module_lab.endpoints["gcp"] + "/zones/us-east1-b/instances/" + LEFTOVER, timeout=10).raise_for_status()


def test_check_diff_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play("--check", "--diff", extra=LAB)
    assert recap(proc)["failed"] == 0
    assert mutating(module_lab) == []
    assert '-            "%s"' % OLD in proc.stdout and '+            "%s"' % NEW in proc.stdout
    # The port-2376 rule is deleted by the role now, not left to the operator.
    assert "Stop allowing port 2376 in firewall rule circleci-server-vm-allow-docker" in proc.stdout
    assert "gcp-firewall-2376" not in proc.stdout
    assert "circleci-server-vm-allow-docker" in firewall_rules(module_lab)


def test_fault_on_set_policy_then_rerun_converges(module_lab, play):
    module_lab.admin.add_fault(r"setIamPolicy", service="gcp", method="POST", status=403, message="injected denial")
    failed = play(extra=LAB, check=False)
    assert failed.returncode != 0 and "Failed to update the IAM policy of service account" in failed.stdout
    assert bindings(module_lab)["roles/iam.workloadIdentityUser"] == [OLD]
    module_lab.admin.clear_faults()
    proc = play("--diff", extra=LAB)
    assert recap(proc)["changed"] == 2   # the binding, the firewall rule
    assert firewall_rules(module_lab) == ["circleci-server-vm-allow-ssh-rerun"]
    assert bindings(module_lab) == {"roles/iam.workloadIdentityUser": [NEW], "roles/iam.serviceAccountTokenCreator": ["group:sre@acme.example"]}


def test_second_run_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    assert recap(play(extra=LAB))["changed"] == 0
    assert mutating(module_lab) == []
