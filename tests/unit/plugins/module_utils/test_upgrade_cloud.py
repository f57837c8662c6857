# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud import aws_iam, ec2_rules, gcp_iam

OLD = "system:serviceaccount:circleci-server:vm-service"
NEW = "system:serviceaccount:circleci-server:machine-provisioner"
SUB = "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"


def trust(subject, extra=True):
    statements = [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/x"},
                   "Action": "sts:AssumeRoleWithWebIdentity",
                   "Condition": {"StringEquals": {SUB: subject, "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com"}}}]
    if extra:
        statements.append({"Sid": "BreakGlass", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/sre"}, "Action": "sts:AssumeRole"})
    return {"Version": "2012-10-17", "Statement": statements}


def test_replace_subject_changes_only_the_subject():
    before = trust(OLD)
    after, changed = aws_iam.replace_subject(before, OLD, NEW)
    assert changed
    assert after["Statement"][0]["Condition"]["StringEquals"][SUB] == NEW
    assert after["Statement"][0]["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:aud"] == "sts.amazonaws.com"
    assert after["Statement"][1] == before["Statement"][1]
    assert before["Statement"][0]["Condition"]["StringEquals"][SUB] == OLD  # input untouched


@pytest.mark.parametrize("subject, keep, expected", [
    (NEW, False, NEW),                       # already done: idempotent
    ([OLD, "other"], False, [NEW, "other"]),  # list keeps other subjects, in order
    ([OLD, NEW], False, [NEW]),               # both: the old one goes
    (OLD, True, [OLD, NEW]),                  # keep the old subject for a rollback
    ([OLD, NEW], True, [OLD, NEW]),
])
def test_replace_subject_cases(subject, keep, expected):
    after, changed = aws_iam.replace_subject(trust(subject), OLD, NEW, keep_from_subject=keep)
    assert after["Statement"][0]["Condition"]["StringEquals"][SUB] == expected
    assert changed == (expected != subject)


def test_replace_subject_refuses_a_role_without_either_subject():
    with pytest.raises(aws_iam.PolicyError, match="Check the role name and the namespace"):
        aws_iam.replace_subject(trust("system:serviceaccount:other:x"), OLD, NEW)
    with pytest.raises(aws_iam.PolicyError):
        aws_iam.replace_subject(trust(OLD), OLD, OLD)


def test_normalise_document_accepts_url_encoded_json():
    assert aws_iam.normalise_document('%7B%22Version%22%3A%20%222012-10-17%22%7D') == {"Version": "2012-10-17"}
    assert aws_iam.normalise_document({"a": 1}) == {"a": 1}


def test_machine_provisioner_policy_is_the_4_3_one():
    policy = aws_iam.machine_provisioner_policy("sg-123", "vpc-456")
    text = json.dumps(policy)
    assert "circleci-machine-provisioner" in text and "circleci-vm-service" not in text
    assert not any(a in text for a in ("CreateVolume", "AttachVolume", "DetachVolume", "DeleteVolume"))
    assert "security-group/sg-123" in text and '"vpc-456"' in text and "<" not in text
    with pytest.raises(aws_iam.PolicyError):
        aws_iam.machine_provisioner_policy("", "vpc-456")


GROUP = [
    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "ssh"}, {"CidrIp": "172.20.0.0/16"}]},
    {"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16", "Description": "docker"}],
     "UserIdGroupPairs": [{"GroupId": "sg-9", "UserId": "1"}]},
    {"IpProtocol": "tcp", "FromPort": 2000, "ToPort": 3000, "IpRanges": [{"CidrIp": "192.168.0.0/16"}]},
    {"IpProtocol": "udp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]},
]


def test_select_takes_exactly_the_port_from_every_source():
    selected = ec2_rules.select(GROUP, "tcp", 2376, 2376)
    assert selected == [{"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
                         "UserIdGroupPairs": [{"GroupId": "sg-9", "UserId": "1"}]}]
    assert ec2_rules.select(GROUP, "6", 2376, 2376, ["sg-9"]) == [
        {"IpProtocol": "tcp", "FromPort": 2376, "ToPort": 2376, "UserIdGroupPairs": [{"GroupId": "sg-9", "UserId": "1"}]}]
    assert ec2_rules.select(GROUP, "tcp", 2377, 2377) == []


def test_without_keeps_every_other_rule():
    after = ec2_rules.without(GROUP, ec2_rules.select(GROUP, "tcp", 2376, 2376))
    assert ec2_rules.flatten(after) == ["tcp 2000-3000 192.168.0.0/16", "tcp 22 10.0.0.0/16 (ssh)", "tcp 22 172.20.0.0/16",
                                        "udp 2376 10.0.0.0/16"]
    assert ec2_rules.containing(after, "tcp", 2376) == ["tcp 2000-3000 192.168.0.0/16"]


def test_missing_adds_only_absent_sources():
    assert ec2_rules.missing(GROUP, "tcp", 22, 22, ["10.0.0.0/16"]) is None
    assert ec2_rules.missing(GROUP, "tcp", 22, 22, ["10.0.0.0/16", "10.1.0.0/16"], description="x") == {
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.1.0.0/16", "Description": "x"}]}


WI_OLD = gcp_iam.workload_identity_member("p", "circleci-server", "vm-service")
WI_NEW = gcp_iam.workload_identity_member("p", "circleci-server", "machine-provisioner")
POLICY = {"version": 1, "etag": "E1", "bindings": [
    {"role": gcp_iam.WORKLOAD_IDENTITY_ROLE, "members": [WI_OLD]},
    {"role": "roles/iam.serviceAccountTokenCreator", "members": ["group:sre@acme.example"]},
    {"role": gcp_iam.WORKLOAD_IDENTITY_ROLE, "members": [WI_OLD], "condition": {"title": "c", "expression": "true"}},
]}


def test_edit_policy_moves_the_member_and_keeps_the_rest():
    after, changed = gcp_iam.edit_policy(POLICY, gcp_iam.WORKLOAD_IDENTITY_ROLE, WI_NEW, "present", [WI_OLD])
    assert changed and after["etag"] == "E1" and after["version"] == 1
    assert after["bindings"][0] == {"role": gcp_iam.WORKLOAD_IDENTITY_ROLE, "members": [WI_NEW]}
    assert after["bindings"][1:] == POLICY["bindings"][1:]
    again, changed = gcp_iam.edit_policy(after, gcp_iam.WORKLOAD_IDENTITY_ROLE, WI_NEW, "present", [WI_OLD])
    assert not changed and again == after


def test_edit_policy_absent_drops_an_empty_binding():
    after, changed = gcp_iam.edit_policy({"etag": "E", "bindings": [{"role": "roles/x", "members": ["user:a"]}]}, "roles/x", "user:a", "absent")
    assert changed and after == {"etag": "E"}
    assert gcp_iam.edit_policy({"etag": "E"}, "roles/x", "user:a", "absent") == ({"etag": "E"}, False)


class FakeResponse:
    def __init__(self, status, payload):
        self.status_code, self._payload, self.text = status, payload, json.dumps(payload)

    def json(self):
        return self._payload


class FakeSession:
    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def post(self, url, json=None, timeout=None):  # pylint: disable=redefined-outer-name
        self.calls.append((url.rsplit(":", 1)[-1], json))
        return self.answers.pop(0)


def test_ensure_retries_a_stale_etag_and_a_503():
    written = dict(POLICY, etag="E3")
    session = FakeSession([FakeResponse(200, POLICY), FakeResponse(409, {"error": {"message": "etag"}}),
                           FakeResponse(200, dict(POLICY, etag="E2")), FakeResponse(503, {}), FakeResponse(200, written)])
    iam = gcp_iam.ServiceAccountIam(session, "vm@p.iam.gserviceaccount.com", base_url="http://lab/", sleep=lambda s: None)
    before, after, changed = iam.ensure(gcp_iam.WORKLOAD_IDENTITY_ROLE, WI_NEW, replaces=[WI_OLD])
    assert changed and after == written and before["etag"] == "E2"
    assert [c[0] for c in session.calls] == ["getIamPolicy", "setIamPolicy", "getIamPolicy", "setIamPolicy", "setIamPolicy"]
    assert session.calls[3][1]["policy"]["etag"] == "E2"


def test_ensure_in_check_mode_only_reads_and_errors_carry_the_status():
    session = FakeSession([FakeResponse(200, POLICY)])
    iam = gcp_iam.ServiceAccountIam(session, "vm@p", sleep=lambda s: None)
    assert iam.ensure(gcp_iam.WORKLOAD_IDENTITY_ROLE, WI_NEW, check_mode=True)[2] is True
    assert [c[0] for c in session.calls] == ["getIamPolicy"]
    iam = gcp_iam.ServiceAccountIam(FakeSession([FakeResponse(403, {"error": {"message": "denied"}})]), "vm@p", sleep=lambda s: None)
    with pytest.raises(gcp_iam.GcpIamError, match="403: denied") as info:
        iam.get_policy()
    assert info.value.status == 403
