# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""machine_provisioner_iam (IRSA and IAM keys), vm_service_leftovers and vm_service_security_group on AWS.

Scenario aws-4.2-leftover-vms: aws-4.2 (the IRSA role with a second trust statement, its 4.2 inline policy, the
vm-service security group with 2376 and three other rules, the bucket without versioning) plus two VMs tagged
ManagedBy=circleci-vm-service and an old DLC volume. One lab for the module (bring-up is the slow part); the
tests run in order: waiting for the VMs stops, check mode on the fresh lab, faults then a plain re-run, the
idempotent run, then the IAM keys variant.
"""
from __future__ import annotations

import base64
import json

import boto3
import pytest

from .conftest import mutating, recap

pytestmark = pytest.mark.parametrize("module_lab", ["aws-4.2-leftover-vms"], indirect=True, scope="module")

NS = "circleci-server"
OLD_SUB = "system:serviceaccount:%s:vm-service" % NS
NEW_SUB = "system:serviceaccount:%s:machine-provisioner" % NS
ENABLE = {"vm_service_leftovers_bucket_versioning": "enable", "circleci_terminate_leftover_vms": "true",
          "vm_service_leftovers_delete_dlc_volumes": "true"}


def client(lab, service):
    env = lab.env
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def inventory(lab):
    import yaml
    with open(lab.files["inventory"]) as handle:
        return yaml.safe_load(handle)["all"]["hosts"]["localhost"]


def sg_rules(lab):
    group_id = inventory(lab)["circleci_aws_vm_service_security_group_id"]
    group = client(lab, "ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return sorted((p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p.get("IpRanges", []))


def leftovers(lab):
    ec2 = client(lab, "ec2")
    tagged = [{"Name": "tag:ManagedBy", "Values": ["circleci-vm-service"]}]
    reservations = ec2.describe_instances(Filters=tagged)["Reservations"]
    return (sorted(i["State"]["Name"] for r in reservations for i in r["Instances"]),
            [v["VolumeId"] for v in ec2.describe_volumes(Filters=tagged)["Volumes"]])


def test_waiting_for_leftover_vms_stops_with_what_to_do(module_lab, play):
    proc = play("--tags", "vm_service_leftovers", check=False,
                extra={"vm_service_leftovers_wait_retries": 1, "vm_service_leftovers_wait_delay": 1})
    assert proc.returncode != 0
    assert "2 VM(s) tagged ManagedBy=circleci-vm-service are still there" in proc.stdout
    assert "circleci_terminate_leftover_vms=true" in proc.stdout
    assert leftovers(module_lab)[0] == ["running", "running"]


def test_check_diff_changes_nothing_and_names_every_change(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play("--check", "--diff", extra=ENABLE)
    assert recap(proc)["failed"] == 0
    assert mutating(module_lab) == []
    out = proc.stdout
    assert '-                    "oidc.eks.us-east-1.amazonaws.com/id/5C3D0F1B2E4A9C7D8E6F0A1B2C3D4E5F:sub": "%s"' % OLD_SUB in out
    assert '+                    "oidc.eks.us-east-1.amazonaws.com/id/5C3D0F1B2E4A9C7D8E6F0A1B2C3D4E5F:sub": "%s"' % NEW_SUB in out
    assert '+    "circleci-machine-provisioner": {' in out
    assert '-        "tcp 2376 10.0.0.0/16 (Docker TLS from the subnet)",' in out
    assert "versioning Disabled -> Enabled" in out and '-    "versioning": "Disabled"' in out
    assert "iam-old-role-policy" in out
    assert "EC2 instances i-" in out and "terminated" in out


def test_fault_on_trust_policy_write_then_rerun_converges(module_lab, play):
    module_lab.admin.add_fault(r"iam/UpdateAssumeRolePolicy", service="aws", status=400, message="ValidationError: injected")
    failed = play("--diff", extra=ENABLE, check=False)
    assert failed.returncode != 0
    assert "Failed to update the trust policy of IAM role circleci-vm" in failed.stdout
    module_lab.admin.clear_faults()
    module_lab.admin.add_fault(r"ec2/RevokeSecurityGroupIngress", service="aws", status=400, message="InvalidPermission.NotFound: injected")
    failed = play("--tags", "vm_service_security_group", check=False)
    assert failed.returncode != 0 and "Failed to revoke the ingress rule tcp 2376-2376" in failed.stdout
    module_lab.admin.clear_faults()

    proc = play("--diff", extra=ENABLE)
    assert recap(proc)["changed"] >= 3

    iam = client(module_lab, "iam")
    trust = iam.get_role(RoleName="circleci-vm")["Role"]["AssumeRolePolicyDocument"]
    statements = trust["Statement"]
    assert list(statements[0]["Condition"]["StringEquals"].values()) == [NEW_SUB]
    assert statements[1]["Sid"] == "BreakGlassFromSRE" and statements[1]["Action"] == "sts:AssumeRole"
    names = iam.list_role_policies(RoleName="circleci-vm")["PolicyNames"]
    assert sorted(names) == ["circleci-machine-provisioner", "circleci-vm-service"]
    policy = json.dumps(iam.get_role_policy(RoleName="circleci-vm", PolicyName="circleci-machine-provisioner")["PolicyDocument"])
    assert "circleci-machine-provisioner" in policy and "Volume" not in policy.replace("volume/*", "")
    assert sg_rules(module_lab) == [(22, "10.0.0.0/16"), (22, "172.20.0.0/16"), (54782, "0.0.0.0/0")]
    versioning = client(module_lab, "s3").get_bucket_versioning(Bucket="acme-circleci-server-artifacts")
    assert versioning["Status"] == "Enabled"
    states, volumes = leftovers(module_lab)
    assert set(states) <= {"shutting-down", "terminated"} and volumes == []


def test_second_run_changes_nothing(module_lab, play):
    module_lab.admin.clear_requests()
    proc = play(extra=ENABLE)
    assert recap(proc)["changed"] == 0
    assert mutating(module_lab) == []


def test_iam_keys_user_secret_and_old_user_listed(module_lab, play, run):
    iam = client(module_lab, "iam")
    iam.create_user(UserName="circleci-vm-service")
    keys = {"machine_provisioner_iam_aws_auth": "keys"}
    # the Secret cannot be written: the run stops after creating the key, with a message that holds no secret
    module_lab.admin.add_fault(r"/secrets", service="kube", method="POST", status=500)
    failed = play("--tags", "machine_provisioner_iam", extra=keys, check=False)
    module_lab.admin.clear_faults()
    assert failed.returncode != 0 and "could not be written (details hidden" in failed.stdout
    orphan = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="circleci-machine-provisioner")["AccessKeyMetadata"]]
    assert len(orphan) == 1

    # the re-run stores a new key and, as asked, deletes the orphan
    proc = play("--tags", "machine_provisioner_iam", "-v", extra=dict(keys, machine_provisioner_iam_delete_stale_keys="true"))
    assert recap(proc)["changed"] >= 1
    secret = json.loads(run("kubectl", "-n", NS, "get", "secret", "machine-provisioner-secret", "-o", "json", env=module_lab.env).stdout)
    key_id = base64.b64decode(secret["data"]["accessKey"]).decode()
    secret_key = base64.b64decode(secret["data"]["secretKey"]).decode()
    assert secret_key and secret_key not in proc.stdout + proc.stderr + failed.stdout + failed.stderr
    assert secret["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName="circleci-machine-provisioner")["AccessKeyMetadata"]] == [key_id]
    assert key_id not in orphan
    assert iam.list_user_policies(UserName="circleci-machine-provisioner")["PolicyNames"] == ["circleci-machine-provisioner"]
    assert "iam-old-user" in proc.stdout
    assert recap(play("--tags", "machine_provisioner_iam", extra=keys))["changed"] == 0
