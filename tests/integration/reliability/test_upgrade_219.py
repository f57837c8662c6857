"""upgrade-2.19.yml in the reliability suite (suite.py: what each proof shows) on the lab's box-2.19 scenario: the
services box over SSH (the lab's box stand-in), its EC2 instance and the Nomad clients' Auto Scaling group."""
from __future__ import annotations

import json
import urllib.request

import boto3

from .suite import SPEC, BadInput, Playbook, ReliabilityProofs, Step


def plan_named(_runner, output) -> None:
    assert "Replicated 2.34.1 -> 2.38.6: update" in output
    assert "app started at sequence 2439 -> 2460 (2.19.6)" in output


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:  # nosec: the lab, loopback
        return json.loads(response.read())


def end_state(lab, _output) -> None:
    """The box runs 2.19.6 on Replicated 2.38.6 (installed without Docker or proxy), docker-ce pinned and held, one
    rollback image; every Nomad client on the 2.19 launch configuration, ready, and no job killed."""
    state = _get(lab.endpoints["box"] + "/v1/state")
    assert state["replicated_version"] == "2.38.6" and len(state["installer_runs"]) == 1
    assert {"no-docker", "no-proxy"} <= set(state["installer_runs"][0]["args"])
    assert state["docker"]["held"] and state["docker"]["package_version"] == "17.12.1~ce-0~ubuntu"
    assert state["app"]["State"] == "started" and not state["app"]["IsTransitioning"]
    assert state["app"]["Sequence"] == 2460 and state["app_version"] == "2.19.6"
    env = lab.env
    session = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    images = boto3.client("ec2", **session).describe_images(
        Owners=["self"], Filters=[{"Name": "tag:circleci.server/upgrade", "Values": ["2.19"]}])["Images"]
    assert len(images) == 1, images
    (group,) = boto3.client("autoscaling", **session).describe_auto_scaling_groups(
        AutoScalingGroupNames=["circleci_nomad_clients_asg"])["AutoScalingGroups"]
    assert group["LaunchConfigurationName"].startswith("nomad-client-2.19-")
    assert len(group["Instances"]) == group["DesiredCapacity"]
    assert {i.get("LaunchConfigurationName") for i in group["Instances"]} == {group["LaunchConfigurationName"]}
    ready = [n for n in _get(lab.endpoints["nomad"] + "/v1/nodes") if n["Status"] == "ready"]
    assert len(ready) == group["DesiredCapacity"] and {n["Datacenter"] for n in ready} == {"default"}
    assert lab.admin.nomad_stats()["killed"] == 0


ENTRY = Playbook(
    name="upgrade-2.19",
    playbook="playbooks/upgrade-2.19.yml",
    alias="circleci.server.upgrade_2_19",
    scenario="box-2.19",
    argument_spec=("inputs", "upgrade_2_19"),
    # A failed installer is waited out (replicated_update_timeout, 600) in retries of delay seconds: each retry is an
    # SSH command of a few seconds under load, so 600 "seconds" took 40 minutes in the lab. Lab time is fast.
    extra_vars={"replicated_update_timeout": 20},
    secret_vars={"circleci_nomad_token": "canary-nomad-token-2f8e61d0c4"},
    # The box's SSH key: the inventory names it (0600); its key material must be nowhere else.
    secret_lab_files=("box_private_key",),
    operator_files=("box_private_key",),
    scan_lab_dirs=("box_root",),
    mutating_steps=(
        Step("app-stop", "box", ("POST",), r"^/v1/app/stop$"),
        Step("ami", "aws", ("POST",), r"^ec2/CreateImage$"),
        Step("docker-hold", "box", ("POST",), r"^/v1/docker/hold$"),
        Step("replicated-installer", "box", ("POST",), r"^/v1/installer/run$"),
        Step("app-start", "box", ("POST",), r"^/v1/app/start$"),
        Step("release-apply", "box", ("POST",), r"^/v1/app-release/apply$"),
        Step("launch-configuration", "aws", ("POST",), r"^autoscaling/CreateLaunchConfiguration$"),
        # One termination per client (two): not once.
        Step("clients-roll", "aws", ("POST",), r"^autoscaling/TerminateInstanceInAutoScalingGroup$", writes_once=False),
    ),
    after_check=plan_named,
    verify=end_state,
    bad_inputs=(
        BadInput("release-sequence-word", {"circleci_219_release_sequence": "latest"},
                 r"circleci_219_release_sequence.*cannot be converted to an int", SPEC),
        BadInput("release-sequence-fraction", {"circleci_219_release_sequence": "2460.5"},
                 r"circleci_219_release_sequence.*cannot be converted to an int", SPEC),
        BadInput("nomad-down-timeout-word", {"circleci_nomad_down_timeout": "ten minutes"},
                 r"circleci_nomad_down_timeout.*cannot be converted to an int", SPEC),
        BadInput("poll-delay-list", {"circleci_poll_delay": [1]}, r"circleci_poll_delay.*cannot be converted to an int", SPEC),
        BadInput("launch-configuration-kind-unknown", {"circleci_nomad_launch_configuration_kind": "spot"},
                 r"circleci_nomad_launch_configuration_kind must be one of", SPEC),
        # End to end: the inputs' argument spec (the playbook's first task), then the preflight's first check,
        # then its reads of the box, AWS and Nomad.
        BadInput("release-sequence-word-end-to-end", {"circleci_219_release_sequence": "latest"},
                 r"circleci_219_release_sequence.*cannot be converted to an int"),
        BadInput("release-sequence-zero", {"circleci_219_release_sequence": 0}, r"Set circleci_219_release_sequence"),
        BadInput("replicated-version-minor-only", {"circleci_replicated_version": "2.38"}, r"Set circleci_219_release_sequence"),
        BadInput("replicated-version-shell", {"circleci_replicated_version": "2.38.6; reboot"}, r"Set circleci_219_release_sequence"),
        BadInput("instance-id-empty", {"circleci_services_instance_id": ""}, r"circleci_services_instance_id"),
        BadInput("asg-name-empty", {"circleci_aws_nomad_asg_name": ""}, r"circleci_aws_nomad_asg_name"),
        BadInput("instance-missing", {"circleci_services_instance_id": "i-00000000000000000"},
                 r"Instance i-00000000000000000 or Auto Scaling group .* was not\s+found"),
        BadInput("asg-missing", {"circleci_aws_nomad_asg_name": "no-such-asg"}, r"Auto Scaling group no-such-asg was not"),
        BadInput("replicated-downgrade", {"circleci_replicated_version": "2.29.0"}, r"is newer than circleci_replicated_version"),
        BadInput("replicated-without-docker-pin", {"circleci_replicated_version": "2.40.0"},
                 r"No docker-ce version is pinned for Replicated 2\.40\.0"),
        BadInput("release-sequence-unknown", {"circleci_219_release_sequence": 9999}, r"Release sequence 9999"),
        BadInput("release-version-mismatch", {"circleci_219_release_version": "2.19.5"}, r"Release sequence 2460 \(2\.19\.5\)"),
        BadInput("disk-too-full", {"replicated_preflight_min_free_gb": 100000}, r"the update needs 100000 GB"),
    ),
)


class TestUpgrade219(ReliabilityProofs):
    entry = ENTRY
