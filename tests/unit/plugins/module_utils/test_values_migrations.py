# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each hop from the documented examples (server-4x-docs.md 1.2-1.9), and the version chain."""
from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils.values import migrations as M
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile
from ansible_collections.circleci.server.plugins.module_utils.versions import UnknownRelease, VersionError


def hop(pair, tree):
    return M.HOPS[pair](yamlfile.from_plain(tree))


def plain(result):
    return yamlfile.to_plain(result.tree)


def actions(result):
    return {a.id: a for a in result.manual_actions}


def changes(result, action=None):
    return [c.as_dict() for c in result.changes if action is None or c.action == action]


# ---------------------------------------------------------------- 4.2 -> 4.3

VALUES_4_2 = {
    "global": {"domainName": "ci.example.com"},
    "vm_service": {
        "enabled": True,
        "replicas": 1,
        "dlc_lifespan_days": 3,
        "providers": {
            "ec2": {"enabled": True, "region": "us-west-1", "subnets": ["subnet-abcd1234"], "securityGroupId": "sg-8asfas76",
                    "tags": ["key", "value", "foo", "bar"], "secretKey": "s3cr3t"},
            "gcp": {"enabled": False, "zone": "us-east1-b", "subnetwork": "my-server-vm-subnet"},
        },
    },
}


def test_4_3_rename_tags_and_zones_from_the_upgrade_guide():
    result = hop(("4.2", "4.3"), VALUES_4_2)
    out = plain(result)
    assert "vm_service" not in out
    mp = out["machine_provisioner"]
    assert mp["enabled"] is True and mp["replicas"] == 1
    assert mp["providers"]["ec2"]["tags"] == {"key": "value", "foo": "bar"}
    assert mp["providers"]["ec2"]["subnets"] == ["subnet-abcd1234"]
    assert mp["providers"]["gcp"]["zones"] == ["us-east1-b"] and "zone" not in mp["providers"]["gcp"]
    assert mp["dlcUnusedLifespanDays"] == 3 and "dlc_lifespan_days" not in mp
    assert [c["action"] for c in changes(result)] == ["renamed", "converted", "converted", "renamed"]
    renamed = changes(result)[0]
    assert renamed["before"] == "vm_service" and renamed["after"] == "machine_provisioner"
    assert all("4.3" in c["reason"] for c in changes(result))


def test_4_3_key_order_is_kept():
    out = plain(hop(("4.2", "4.3"), {"a": 1, "vm_service": {"x": 1, "providers": {"gcp": {"p": 1, "zone": "z", "q": 2}}}, "b": 2}))
    assert list(out) == ["a", "machine_provisioner", "b"]
    assert list(out["machine_provisioner"]["providers"]["gcp"]) == ["p", "zones", "q"]


def test_4_3_manual_actions_carry_their_exact_content():
    result = hop(("4.2", "4.3"), VALUES_4_2)
    found = actions(result)
    trust = json.loads(found["4.3-trust-policy"].content)
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {"<OIDC_PROVIDER_URL>:sub": "system:serviceaccount:<K8S_NAMESPACE>:machine-provisioner"}
    assert trust["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    policy = json.loads(found["4.3-iam-policy"].content)
    text = json.dumps(policy)
    assert "circleci-machine-provisioner" in text and "circleci-vm-service" not in text
    assert "security-group/sg-8asfas76" in text and "ec2:CreateVolume" not in text
    assert "--port 2376" in found["4.3-security-group-2376"].content
    assert "sg-8asfas76" in found["4.3-security-group-2376"].content
    assert "Status=Enabled" in found["4.3-dlc-bucket-versioning"].content
    assert "project_count=0" in found["4.3-workflows-conductor-migration"].detail
    # An AWS-only file gets no GCP action.
    assert "4.3-workload-identity" not in found
    gcp = actions(hop(("4.2", "4.3"), {"vm_service": {"providers": {"gcp": {"enabled": True, "project_id": "proj"}}}}))
    assert "proj.svc.id.goog[<K8S_NAMESPACE>/machine-provisioner]" in gcp["4.3-workload-identity"].content
    assert "4.3-trust-policy" not in gcp


def test_4_3_reports_prescaled_with_its_replacement():
    tree = dict(VALUES_4_2, vm_scaler={"prescaled": [
        {"count": 2, "cron": "", "docker-engine": True, "image": "docker-default", "type": "l1.medium"},
        {"count": 0, "cron": "", "docker-engine": False, "image": "default", "type": "l1.medium"}]})
    result = hop(("4.2", "4.3"), tree)
    assert plain(result)["vm_scaler"] == tree["vm_scaler"]
    warning = changes(result, "warning")[0]
    assert warning["path"] == "vm_scaler.prescaled" and "scheduled" in warning["reason"]
    content = actions(result)["4.3-prescaled-instances"].content
    assert content == "scheduled:\n  - executor: linux\n    class: medium\n    image: docker-default\n    cron: \"\"\n    count: 2\n"


def test_4_3_changes_are_masked():
    result = hop(("4.2", "4.3"), {"vm_service": {"providers": {"ec2": {"tags": ["token", "abc"]}}}})
    converted = changes(result, "converted")[0]
    assert converted["after"] == {"token": "********"}


def test_4_3_on_a_migrated_tree_changes_nothing():
    once = hop(("4.2", "4.3"), VALUES_4_2)
    twice = M.HOPS[("4.2", "4.3")](once.tree)
    assert plain(twice) == plain(once)
    assert [c for c in twice.changes if c.action != "warning"] == []


def test_4_3_same_content_under_both_names_drops_the_old_block():
    migrated = plain(hop(("4.2", "4.3"), VALUES_4_2))["machine_provisioner"]
    result = hop(("4.2", "4.3"), {"vm_service": VALUES_4_2["vm_service"], "machine_provisioner": migrated})
    assert "vm_service" not in plain(result)
    assert changes(result)[0]["action"] == "removed"


@pytest.mark.parametrize("tree,message", [
    ({"vm_service": {"enabled": True}, "machine_provisioner": {"enabled": False}},
     "vm_service and machine_provisioner are both set"),
    ({"vm_service": {"providers": {"ec2": {"tags": ["a", "b", "c"]}}}},
     r"machine_provisioner.providers.ec2.tags has 3 items, an odd number"),
    ({"vm_service": {"providers": {"ec2": {"tags": ["a", {"b": 1}]}}}},
     r"machine_provisioner.providers.ec2.tags\[1\] is a mapping"),
    ({"vm_service": {"providers": {"ec2": {"tags": ["a", ["b"]]}}}},
     r"machine_provisioner.providers.ec2.tags\[1\] is a list"),
    ({"vm_service": {"providers": {"ec2": {"tags": ["a", "1", "a", "2"]}}}}, "sets tag 'a' twice"),
    ({"vm_service": {"providers": {"ec2": {"tags": "a=b"}}}}, "tags is a str"),
    ({"vm_service": {"providers": {"gcp": {"zone": "a", "zones": ["b"]}}}},
     r"machine_provisioner.providers.gcp.zone \('a'\) and machine_provisioner.providers.gcp.zones"),
])
def test_4_3_bad_input_says_what_and_where(tree, message):
    with pytest.raises(M.MigrationError, match=message):
        hop(("4.2", "4.3"), tree)


def test_4_3_zone_equal_to_zones_is_dropped():
    result = hop(("4.2", "4.3"), {"machine_provisioner": {"providers": {"gcp": {"zone": "a", "zones": ["a"]}}}})
    assert plain(result) == {"machine_provisioner": {"providers": {"gcp": {"zones": ["a"]}}}}


def test_hops_are_pure():
    tree = yamlfile.from_plain(VALUES_4_2)
    before = yamlfile.to_plain(tree)
    for function in M.HOPS.values():
        function(tree)
    assert yamlfile.to_plain(tree) == before


# ---------------------------------------------------------------- no-op hops

@pytest.mark.parametrize("pair", [("4.3", "4.4"), ("4.5", "4.6")])
def test_no_op_hops(pair):
    result = hop(pair, {"a": {"b": [1, 2]}})
    assert plain(result) == {"a": {"b": [1, 2]}} and result.changes == [] and result.manual_actions == []


def test_4_5_warns_gke_installations():
    assert hop(("4.4", "4.5"), {"object_storage": {"gcs": {"enabled": True}}}).warnings
    assert not hop(("4.4", "4.5"), {"object_storage": {"s3": {"enabled": True}}}).warnings


# ---------------------------------------------------------------- 4.6 -> 4.7

def test_4_7_agent_url_and_image_pull_secrets():
    result = hop(("4.6", "4.7"), {
        "global": {"imagePullSecrets": [{"name": "regcred"}, "other"]},
        "machine_provisioner": {"machine_agent_base_url": "https://mirror/mp", "enabled": True}})
    out = plain(result)
    assert out["machine_provisioner"] == {"agent_base_url": "https://mirror/mp", "enabled": True}
    assert out["global"]["imagePullSecrets"] == ["regcred", "other"]
    assert "4.7-never-4.7.7" in actions(result)


def test_4_7_image_pull_secret_with_extra_keys_fails():
    with pytest.raises(M.MigrationError, match=r"global.imagePullSecrets\[0\] has keys"):
        hop(("4.6", "4.7"), {"global": {"imagePullSecrets": [{"name": "a", "x": 1}]}})


def test_4_7_7_is_never_a_target():
    with pytest.raises(M.MigrationError, match="known-broken"):
        M.plan("4.6.6", "4.7.7")
    assert M.plan("4.7.7", "4.7.15") == []


# ---------------------------------------------------------------- 4.7 -> 4.8

def test_4_8_custom_config_renames_and_removed_keys():
    result = hop(("4.7", "4.8"), {
        "machine_provisioner": {"config_path": "/mp.yaml"},
        "docker_provisioner": {"config_path": "/dp.yaml"},
        "telegraf": {"config": {"custom_config_file": "[[inputs.cpu]]\n"}, "resources": {}},
        "nomad": {"clusterDomain": "cluster.local"},
        "runner_admin": {"external": {"launch_agent_base_url": "https://x"}},
    })
    out = plain(result)
    assert out["machine_provisioner"] == {"custom_config": "/mp.yaml"}
    assert out["docker_provisioner"] == {"custom_config": "/dp.yaml"}
    assert out["telegraf"] == {"custom_config": "[[inputs.cpu]]\n", "resources": {}}
    assert out["nomad"] == {"clusterDomain": "cluster.local"}
    assert {c["path"] for c in changes(result, "warning")} == {"nomad.clusterDomain", "runner_admin.external.launch_agent_base_url"}
    assert "4.8-machine-runner-3" in actions(result)


# ---------------------------------------------------------------- 4.8 -> 4.9

def test_4_9_tracing_to_otel_and_group_renames():
    result = hop(("4.8", "4.9"), {
        "global": {"tracing": {"enabled": True, "collector_host": "otel", "sample_rate": 0.5}},
        "nomad": {"auto_scaler": {"aws": {"autoScalingGroup": "prod_circleci_nomad_clients_asg"},
                                  "gcp": {"mig_name": "prod-nomad"}}}})
    out = plain(result)
    assert out["global"] == {"otel": {"enabled": True, "collector_host": "otel", "sample_rate": 0.5}}
    assert out["nomad"]["auto_scaler"]["aws"]["autoScalingGroup"] == "prod_circleci_nomad_clients_asg"
    found = actions(result)
    assert "prod-circleci-nomad-clients-asg" in found["4.9-autoscaler-asg-name"].content
    assert "prod-nomad-client-group" in found["4.9-autoscaler-mig-name"].content
    assert "4.9-mongodb-4.4" in found


def test_4_9_tracing_and_otel_that_differ_fail():
    with pytest.raises(M.MigrationError, match="global.tracing and global.otel are both set"):
        hop(("4.8", "4.9"), {"global": {"tracing": {"enabled": True}, "otel": {"enabled": False}}})


# ---------------------------------------------------------------- 4.9 -> 4.10

def test_4_10_telegraf_and_retention():
    result = hop(("4.9", "4.10"), {"telegraf": {"custom_config": "x"}, "global": {"otel": {"enabled": True}}})
    assert plain(result)["telegraf"] == {"custom_config": "x"}
    assert {c["path"] for c in changes(result, "warning")} == {"telegraf", "global.otel.enabled"}
    assert ":wfc-workflow-expired-delete-after-days" in actions(result)["4.10-workflow-retention"].content


# ---------------------------------------------------------------- the chain

def test_every_minor_pair_has_a_hop():
    assert len(M.plan("4.0.0", "4.10.0")) == 10
    assert [f"{a}->{b}" for a, b in M.plan("4.2.7", "4.4.1")] == ["4.2->4.3", "4.3->4.4"]
    assert M.plan("4.2.1", "4.2.7") == []


@pytest.mark.parametrize("src,dst,error,message", [
    ("4.3.9", "4.2.7", M.MigrationError, "older than from_version"),
    ("4.2.7", "4.11.0", UnknownRelease, "not in this collection's release catalog"),
    ("4.2.7", "4.3.99", UnknownRelease, "newer than the last 4.3 patch"),
    ("banana", "4.3.9", VersionError, "is not a version"),
])
def test_bad_versions(src, dst, error, message):
    with pytest.raises(error, match=message):
        M.migrate({}, src, dst)


def test_migrate_reports_upgrade_path_actions():
    result = M.migrate(yamlfile.from_plain(VALUES_4_2), "4.2.3", "4.4.7")
    ids = [a.id for a in result.manual_actions]
    assert ids[0] == "4.3-upgrade-path" and "4.2.7" in result.manual_actions[0].title
    assert "4.4-upgrade-path" in ids
    assert result.hops == ["4.2->4.3", "4.3->4.4"]
