# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
from unittest.mock import MagicMock

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.circleci.server.plugins.modules import (
    ec2_security_group_rule,
    ec2_tagged_resources_info,
    gcp_service_account_iam_member,
    iam_role_trust_subject,
    machine_provisioner_policy_info,
    s3_bucket_versioning,
)

OLD = "system:serviceaccount:circleci-server:vm-service"
NEW = "system:serviceaccount:circleci-server:machine-provisioner"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", "Principal": {"Federated": "arn"},
     "Condition": {"StringEquals": {"oidc/x:sub": OLD}}},
    {"Sid": "Keep", "Effect": "Allow", "Principal": {"AWS": "arn:sre"}, "Action": "sts:AssumeRole"}]}
AWS = {"region": "us-east-1", "access_key": "AKIDEXAMPLE", "secret_key": "dummy-secret"}


def run_module(capsys, module, args, check_mode=False, diff=True):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            module.main()
    return info.value.code, json.loads(capsys.readouterr().out)


@pytest.fixture
def aws_client(monkeypatch):
    client = MagicMock()
    monkeypatch.setattr(AnsibleAWSModule, "client", lambda self, *a, **k: client)
    return client


@pytest.mark.parametrize("check_mode", [True, False])
def test_trust_subject_diff_and_check_mode(capsys, aws_client, check_mode):
    aws_client.get_role.return_value = {"Role": {"AssumeRolePolicyDocument": TRUST}}
    code, result = run_module(capsys, iam_role_trust_subject, dict(AWS, role_name="circleci-vm", from_subject=OLD, to_subject=NEW),
                              check_mode=check_mode)
    assert code == 0 and result["changed"] is True
    assert result["diff"]["before"] == TRUST
    assert result["diff"]["after"]["Statement"][0]["Condition"]["StringEquals"]["oidc/x:sub"] == NEW
    assert result["diff"]["after"]["Statement"][1] == TRUST["Statement"][1]
    assert aws_client.update_assume_role_policy.called is (not check_mode)
    assert "dummy-secret" not in json.dumps(result)


def test_trust_subject_fails_with_advice_when_no_subject_matches(capsys, aws_client):
    aws_client.get_role.return_value = {"Role": {"AssumeRolePolicyDocument": TRUST}}
    code, result = run_module(capsys, iam_role_trust_subject, dict(AWS, role_name="circleci-vm", from_subject="system:serviceaccount:x:vm-service",
                                                                   to_subject="system:serviceaccount:x:machine-provisioner"))
    assert code == 1 and "Check the role name and the namespace" in result["msg"]
    assert not aws_client.update_assume_role_policy.called


def test_security_group_rule_revokes_only_the_port(capsys, aws_client):
    permissions = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
                   {"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "d"}]}]
    aws_client.describe_security_groups.side_effect = [{"SecurityGroups": [{"IpPermissions": permissions}]},
                                                       {"SecurityGroups": [{"IpPermissions": permissions[:1]}]}]
    code, result = run_module(capsys, ec2_security_group_rule, dict(AWS, group_id="sg-1", from_port=2376))
    assert code == 0 and result["changed"] is True
    assert result["revoked"] == ["tcp 2376 10.0.0.0/16"] and result["rules"] == ["tcp 22 10.0.0.0/16"]
    kwargs = aws_client.revoke_security_group_ingress.call_args.kwargs
    assert kwargs["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}]


def test_security_group_rule_no_match_is_no_change(capsys, aws_client):
    aws_client.describe_security_groups.return_value = {"SecurityGroups": [{"IpPermissions": []}]}
    code, result = run_module(capsys, ec2_security_group_rule, dict(AWS, group_id="sg-1", from_port=2376))
    assert code == 0 and result["changed"] is False and not aws_client.revoke_security_group_ingress.called


class _Response:
    def __init__(self, status, payload):
        self.status_code, self._payload, self.text = status, payload, ""

    def json(self):
        return self._payload


def test_gcp_member_check_mode_reads_only(capsys, monkeypatch):
    old = "serviceAccount:p.svc.id.goog[ns/vm-service]"
    new = "serviceAccount:p.svc.id.goog[ns/machine-provisioner]"
    session = MagicMock()
    session.post.return_value = _Response(200, {"etag": "E", "bindings": [{"role": "roles/iam.workloadIdentityUser", "members": [old]}]})
    monkeypatch.setattr(gcp_service_account_iam_member, "authorised_session", lambda module, scopes, refresh_timeout: session)
    code, result = run_module(capsys, gcp_service_account_iam_member,
                              {"service_account": "vm@p.iam.gserviceaccount.com", "member": new, "replaces": [old]}, check_mode=True)
    assert code == 0 and result["changed"] is True
    assert result["diff"]["after"]["bindings"] == {"roles/iam.workloadIdentityUser": [new]}
    assert [c.args[0].rsplit(":", 1)[-1] for c in session.post.call_args_list] == ["getIamPolicy"]


@pytest.mark.parametrize("answers, says", [
    # the read refused: nothing can have been written
    ([(403, {"error": {"message": "Permission iam.serviceAccounts.getIamPolicy denied"}})],
     "could not be read, so nothing was written"),
    # the read worked, the write was refused: the policy is unchanged
    ([(200, {"etag": "E", "bindings": []}), (403, {"error": {"message": "Permission iam.serviceAccounts.setIamPolicy denied"}})],
     "The write was refused, so the policy is unchanged"),
    # the read worked, the write answered 500 every time: it may have landed
    ([(200, {"etag": "E", "bindings": []})] + [(500, {"error": {"message": "backend error"}})] * 7,
     "The write's outcome is unknown"),
])
def test_gcp_member_failure_says_whether_the_policy_may_have_changed(capsys, monkeypatch, answers, says):
    session = MagicMock()
    session.post.side_effect = [_Response(status, payload) for status, payload in answers]
    monkeypatch.setattr(gcp_service_account_iam_member, "authorised_session", lambda module, scopes, refresh_timeout: session)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    code, result = run_module(capsys, gcp_service_account_iam_member,
                              {"service_account": "vm@p.iam.gserviceaccount.com", "member": "serviceAccount:p.svc.id.goog[ns/mp]"})
    assert code == 1 and says in result["msg"], result["msg"]
    assert "Nothing was written when the read failed" not in result["msg"]


def test_policy_info(capsys, aws_client):
    aws_client.describe_security_groups.return_value = {"SecurityGroups": [{"VpcId": "vpc-9"}]}
    code, result = run_module(capsys, machine_provisioner_policy_info, dict(AWS, security_group_id="sg-1"))
    assert code == 0 and result["changed"] is False and result["vpc_id"] == "vpc-9"
    assert "security-group/sg-1" in json.dumps(result["policy"]) and '"vpc-9"' in json.dumps(result["policy"])
    code, result = run_module(capsys, machine_provisioner_policy_info, dict(AWS, security_group_id="", vpc_id="vpc-2"))
    assert code == 1 and "security group ID" in result["msg"]
    aws_client.describe_security_groups.return_value = {"SecurityGroups": []}
    code, result = run_module(capsys, machine_provisioner_policy_info, dict(AWS, security_group_id="sg-404"))
    assert code == 1 and "was not found" in result["msg"]


def test_tagged_resources_lists_instances_and_volumes(capsys, aws_client):
    pages = {"describe_instances": [{"Reservations": [{"Instances": [
        {"InstanceId": "i-2", "State": {"Name": "running"}, "Tags": [{"Key": "Name", "Value": "vm-b"}], "InstanceType": "m5.large"},
        {"InstanceId": "i-1", "State": {"Name": "stopped"}, "Tags": []}]}]}],
        "describe_volumes": [{"Volumes": [{"VolumeId": "vol-1", "State": "available", "Size": 100, "AvailabilityZone": "us-east-1a"}]}]}
    aws_client.get_paginator.side_effect = lambda op: MagicMock(paginate=MagicMock(return_value=pages[op]))
    code, result = run_module(capsys, ec2_tagged_resources_info, dict(AWS, tag_value="circleci-vm-service"), check_mode=True)
    assert code == 0 and result["changed"] is False
    assert [(i["instance_id"], i["state"], i["name"]) for i in result["instances"]] == [("i-1", "stopped", ""), ("i-2", "running", "vm-b")]
    assert result["volumes"] == [{"volume_id": "vol-1", "state": "available", "size": 100, "availability_zone": "us-east-1a",
                                  "attached": False, "name": ""}]


@pytest.mark.parametrize("current, wanted, changed, after", [
    ({}, "Enabled", True, "Enabled"),
    ({"Status": "Enabled"}, "Enabled", False, "Enabled"),
    ({}, None, False, "Disabled"),
    ({}, "Suspended", False, "Disabled"),
])
def test_s3_bucket_versioning(capsys, aws_client, current, wanted, changed, after):
    aws_client.get_bucket_versioning.return_value = current
    args = dict(AWS, bucket="circleci-data", **({"status": wanted} if wanted else {}))
    code, result = run_module(capsys, s3_bucket_versioning, args)
    assert code == 0 and result["changed"] is changed and result["versioning"] == after
    assert aws_client.put_bucket_versioning.called is changed
    assert result["diff"]["before"]["versioning"] == (current.get("Status") or "Disabled")
