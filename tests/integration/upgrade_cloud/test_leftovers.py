# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_service_leftovers on aws-4.2-leftover-vms: two VMs tagged ManagedBy=circleci-vm-service and a DLC volume."""
from __future__ import annotations

import boto3
import pytest

from .conftest import mutating, recap

pytestmark = pytest.mark.parametrize("module_lab", ["aws-4.2-leftover-vms"], indirect=True, scope="module")

TAGS = ("--tags", "vm_service_leftovers")


def leftover_states(lab):
    env = lab.env
    ec2 = boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:ManagedBy", "Values": ["circleci-vm-service"]}])["Reservations"]
    return sorted(i["State"]["Name"] for r in reservations for i in r["Instances"])


def test_waiting_stops_with_what_to_do(module_lab, play):
    proc = play(*TAGS, check=False, extra={"vm_service_leftovers_wait_retries": 1, "vm_service_leftovers_wait_delay": 1})
    assert proc.returncode != 0
    assert "2 VM(s) tagged ManagedBy=circleci-vm-service are still there" in proc.stdout
    assert "circleci_terminate_leftover_vms=true" in proc.stdout
    assert leftover_states(module_lab) == ["running", "running"]


def test_check_mode_lists_and_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play(*TAGS, "--check", extra={"circleci_terminate_leftover_vms": "true"})
    assert recap(proc)["failed"] == 0 and mutating(module_lab) == []
    assert "EC2 instances i-" in proc.stdout and "dlc-volumes" in proc.stdout and "dlc-bucket-versioning" in proc.stdout


def test_terminate_then_rerun_changes_nothing(module_lab, play):
    proc = play(*TAGS, extra={"circleci_terminate_leftover_vms": "true"})
    assert recap(proc)["changed"] == 1
    assert set(leftover_states(module_lab)) <= {"shutting-down", "terminated"}
    assert recap(play(*TAGS, extra={"circleci_terminate_leftover_vms": "true"}))["changed"] == 0
