"""upgrade-2.19.yml stopped by a fault after the AMI, then after the Replicated update: each re-run resumes, and
the box ends with one AMI and one installer run. The account refuses launch configurations (box-2.19-lc-refused),
so the clients end on a launch template with the 2.19 user data.
"""
from __future__ import annotations

import base64

import boto3

from .helpers import box_state, lab_env, play


def test_faults_after_the_ami_and_after_the_update_then_reruns_make_one_of_each(lab_up, run):
    lab = lab_up("box-2.19-lc-refused")
    # After the AMI: holding Docker fails. After the Replicated update: starting the app fails.
    lab.admin.add_fault(r"^/v1/docker/hold$", service="box", method="POST", status=500, message="injected: apt lock")
    first = play(run, lab, check=False)
    assert first.returncode != 0 and "Hold docker-ce" in first.stdout
    state = box_state(lab)
    assert state["app"]["State"] == "stopped" and state["installer_runs"] == []

    lab.admin.clear_faults()
    lab.admin.add_fault(r"^/v1/app/start$", service="box", method="POST", status=500, message="injected: no such image")
    second = play(run, lab, check=False)
    assert second.returncode != 0
    state = box_state(lab)
    assert state["replicated_version"] == "2.38.6" and len(state["installer_runs"]) == 1
    assert state["docker"]["held"]

    lab.admin.clear_faults()
    play(run, lab)
    state = box_state(lab)
    writes = [r["path"] for r in lab.admin.requests()]
    assert writes.count("ec2/CreateImage") == 1, writes
    assert len(state["installer_runs"]) == 1 and state["installer_runs"][0]["args"][0] == "no-docker"
    assert state["app"]["State"] == "started" and state["app"]["Sequence"] == 2460 and state["app_version"] == "2.19.6"
    assert writes.count("autoscaling/CreateLaunchConfiguration") == 1  # refused (400): only the last run got there
    assert writes.count("ec2/CreateLaunchTemplate") == 1

    env = lab_env(lab)
    session = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    (group,) = boto3.client("autoscaling", **session).describe_auto_scaling_groups(
        AutoScalingGroupNames=["circleci_nomad_clients_asg"])["AutoScalingGroups"]
    template = group["LaunchTemplate"]["LaunchTemplateName"]
    assert template.startswith("nomad-client-2.19-") and "LaunchConfigurationName" not in group
    data = boto3.client("ec2", **session).describe_launch_template_versions(
        LaunchTemplateName=template, Versions=["$Latest"])["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    user_data = base64.b64decode(data["UserData"]).decode()
    assert 'servers = ["%s:4647"]' % state["private_address"] in user_data and 'datacenter = "default"' in user_data
    assert {i.get("LaunchTemplate", {}).get("LaunchTemplateName") for i in group["Instances"]} == {template}
    assert lab.admin.nomad_stats()["killed"] == 0
