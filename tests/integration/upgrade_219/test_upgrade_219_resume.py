"""upgrade-2.19.yml where the account refuses launch configurations (box-2.19-lc-refused): the clients end on a
launch template with the 2.19 user data. (Resuming after a fault at each mutating step, and one write of each,
is shown by tests/integration/reliability/test_upgrade_219.py on box-2.19.)
"""
from __future__ import annotations

import base64

import boto3

from .helpers import box_state, lab_env, play


def test_a_refused_launch_configuration_ends_on_a_launch_template(lab_up, run):
    lab = lab_up("box-2.19-lc-refused")
    play(run, lab)
    state = box_state(lab)
    writes = [r["path"] for r in lab.admin.requests()]
    assert len(state["installer_runs"]) == 1 and state["installer_runs"][0]["args"][0] == "no-docker"
    assert state["app"]["State"] == "started" and state["app"]["Sequence"] == 2460 and state["app_version"] == "2.19.6"
    assert writes.count("autoscaling/CreateLaunchConfiguration") == 1  # refused (400)
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
