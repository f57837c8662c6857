"""The lab's seeded scenarios: what load_scenario returns, variants merged over their base."""
from __future__ import annotations

import os
import stat

import pytest
import yaml

from tests.lab.charts import parse_version
from tests.lab.scenarios import (declared_ids, load_scenario, release_steps, render_values, scenario_names, values,
                                 write_values_file)

REQUIRED = {"aws-4.2", "gcp-4.2", "aws-4.2-vault", "aws-4.2-nobackup", "aws-4.2-k8s130", "aws-4.2.5"}


def test_the_scenarios_the_tests_need_exist():
    assert REQUIRED <= set(scenario_names())
    assert not [n for n in scenario_names() if n.startswith("_")]
    with pytest.raises(KeyError):
        load_scenario("aws-9.9")


@pytest.mark.parametrize("name", sorted(REQUIRED) + ["aws-4.2-leftover-vms"])
def test_every_scenario_is_complete(name):
    scenario = load_scenario(name)
    assert scenario["name"] == name and scenario["chain"][-1] == name
    version, minor = parse_version(scenario["server_version"])
    assert minor == "4.2"
    assert scenario["kubernetes"]["namespace"] == "circleci-server"
    assert scenario["helm"]["release"] == "circleci-server"
    assert os.path.isabs(scenario["helm"]["values_file"]) and os.path.isfile(scenario["helm"]["values_file"])
    assert scenario["nomad"]["clients"] == 6
    operator_values = values(scenario)
    assert operator_values["global"]["domainName"]
    assert operator_values["tink"]["enabled"] is scenario["tink"]["migrated"]
    cloud = scenario[scenario["cloud"]]
    if scenario["cloud"] == "aws":
        assert cloud["nomad_clients"]["asg"]["desired_capacity"] == 6
        assert cloud["nomad_clients"]["launch_template"]["name"]
        trust = cloud["vm_service"]["iam_role"]["trust_policy"]["Statement"][0]["Condition"]["StringEquals"]
        assert list(trust.values()) == ["system:serviceaccount:circleci-server:vm-service"]
        assert {r["port_from"] for r in cloud["vm_service"]["security_group"]["ingress"]} >= {2376}
        assert operator_values["vm_service"]["providers"]["ec2"]["securityGroupId"] == cloud["vm_service"]["security_group"]["id"]
        assert isinstance(operator_values["vm_service"]["providers"]["ec2"]["tags"], list)
    else:
        assert cloud["nomad_clients"]["mig"]["target_size"] == 6
        assert isinstance(operator_values["vm_service"]["providers"]["gcp"]["zone"], str)
    steps = release_steps(scenario)
    assert steps[-1] == {"version": version, "extra_overrides": {}, "revision": len(steps)}
    backup = scenario["velero"].get("backup")
    if backup:
        assert backup["labels"]["chart--rev"] == "circleci-server-%s--%d" % (version, len(steps))


def test_aws_base_scenario():
    scenario = load_scenario("aws-4.2")
    assert scenario["server_version"] == "4.2.7" and scenario["cloud"] == "aws"
    assert scenario["kubernetes"]["version"].startswith("v1.27.")
    assert scenario["tink"]["migrated"] and scenario["tink"]["leftover_vault_pvc"]["name"] == "data-vault-0"
    backup = scenario["velero"]["backup"]
    assert (backup["phase"], backup["age_hours"], backup["errors"]) == ("Completed", 2, 0)
    trust = scenario["aws"]["vm_service"]["iam_role"]["trust_policy"]["Statement"]
    assert len(trust) == 2  # a statement the trust-policy update must keep
    lines = [entry["line"] for entry in scenario["logs"]["workflows-conductor-event-consumer"]["4.3"]]
    done = [line for line in lines if "starting next-build-seq-migration" in line and "project_count=0 " in line + " "]
    assert len(done) == 1 and lines.index(done[0]) > 0
    assert "sg-0c1e5e7f1c3a40001" in declared_ids(scenario).values()


def test_gcp_base_scenario():
    scenario = load_scenario("gcp-4.2")
    assert scenario["kubernetes"]["distribution"] == "gke"
    assert values(scenario)["vm_service"]["providers"]["gcp"]["zone"] == "us-east1-b"
    members = [m for b in scenario["gcp"]["vm_service"]["service_account"]["iam_policy"]["bindings"]
               if b["role"] == "roles/iam.workloadIdentityUser" for m in b["members"]]
    assert members == ["serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/vm-service]"]
    assert "aws" not in scenario


def test_variants_merge_over_their_base():
    base = load_scenario("aws-4.2")
    vault = load_scenario("aws-4.2-vault")
    assert vault["chain"] == ["_common-4.2", "aws-4.2", "aws-4.2-vault"] and vault["base"] == "aws-4.2"
    assert vault["aws"] == base["aws"] and vault["helm"]["values_file"] == base["helm"]["values_file"]
    assert vault["tink"] == {"migrated": False} and vault["velero"]["backup"]["phase"] == "Completed"
    text = render_values(vault)
    assert text.startswith("# CircleCI Server values") and "# exactly 16 characters" in text
    operator_values = yaml.safe_load(text)
    assert operator_values["tink"] == {"enabled": False} and operator_values["vault"]["internal"] is True

    assert load_scenario("aws-4.2-nobackup")["velero"].get("backup") is None
    assert load_scenario("aws-4.2-k8s130")["kubernetes"]["version"].startswith("v1.30.")
    older = load_scenario("aws-4.2.5")
    assert older["server_version"] == "4.2.5" and older["aws"] == base["aws"]
    assert [h["version"] for h in older["helm"]["history"]] == ["4.2.5"]
    assert len(load_scenario("aws-4.2-leftover-vms")["aws"]["vm_service"]["leftover_vms"]) == 2


def test_write_values_file_maps_declared_ids_and_keeps_the_file_private(tmp_path):
    scenario = load_scenario("aws-4.2")
    dest = write_values_file(scenario, str(tmp_path / "values.yaml"), ids={"sg-0c1e5e7f1c3a40001": "sg-0123456789abcdef0"})
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with open(dest, encoding="utf-8") as handle:
        text = handle.read()
    assert "sg-0123456789abcdef0   # circleci-vm-service-sg" in text and "sg-0c1e5e7f1c3a40001" not in text
    history = values(scenario, extra_overrides=scenario["helm"]["history"][0]["values_overrides"])
    assert history["tink"] == {"enabled": False} and history["vault"]["internal"] is True


@pytest.mark.parametrize("name", ["aws-4.2", "gcp-4.2"])
def test_hand_migrated_values_keep_the_comments(name):
    scenario = load_scenario(name)
    with open(scenario["helm"]["migrated_values_file"], encoding="utf-8") as handle:
        text = handle.read()
    migrated = yaml.safe_load(text)
    assert "vm_service" not in migrated and "vm_scaler" not in migrated
    assert "machine_provisioner" in migrated and text.startswith("# CircleCI Server values")
    original = values(scenario)
    assert {k: v for k, v in migrated.items() if k != "machine_provisioner"} == {
        k: v for k, v in original.items() if k not in ("vm_service", "vm_scaler")}
