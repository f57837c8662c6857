"""The world: ASG and MIG instances become Nomad nodes after the boot delay and go down when removed."""
from __future__ import annotations

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from tests.lab.core import free_port
from tests.lab.world import JobFeeder, World

from .conftest import client_for, wait_for

# A region of its own: moto's state is process-global and other tests use us-east-1.
REGION = "eu-west-3"
BOOT = 60.0


@pytest.fixture
def moto_endpoint():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()


@pytest.fixture
def autoscaling(moto_endpoint):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    asg = session.client("autoscaling", endpoint_url=moto_endpoint)
    ec2 = session.client("ec2", endpoint_url=moto_endpoint)
    # Any AMI id will do (moto does not validate it); listing moto's AMIs would cost seconds.
    ec2.create_launch_template(LaunchTemplateName="world-lt", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(AutoScalingGroupName="world-asg", MinSize=0, MaxSize=6, DesiredCapacity=2,
                                  LaunchTemplate={"LaunchTemplateName": "world-lt", "Version": "$Latest"},
                                  AvailabilityZones=[REGION + "a"])
    yield asg
    asg.delete_auto_scaling_group(AutoScalingGroupName="world-asg", ForceDelete=True)
    ec2.delete_launch_template(LaunchTemplateName="world-lt")


def _ready(client):
    return sorted(n["Name"] for n in client.nodes.get_nodes() if n["Status"] == "ready")


def test_asg_instances_become_nodes_and_go_down(nomad_lab, lab_clock, autoscaling):
    world = World(lab_clock, nomad_lab, aws_region=REGION, boot_delay=BOOT, poll_interval=2.0, aws_groups=["world-asg"])
    world.start()
    try:
        client = client_for(nomad_lab)
        # Instances already running when the world starts are already nodes (a seeded, settled lab).
        assert len(_ready(client)) == 2
        node = client.node.get_node(client.nodes.get_nodes()[0]["ID"])
        instance_id = node["Attributes"]["unique.platform.aws.instance-id"]
        assert instance_id.startswith("i-") and node["Name"].startswith("ip-")
        assert node["NodeClass"] == "linux-64bit"
        scaled_at = lab_clock.now()
        autoscaling.set_desired_capacity(AutoScalingGroupName="world-asg", DesiredCapacity=4)
        wait_for(lab_clock, lambda: len(_ready(client)) == 4, 3 * BOOT, "two new nodes")
        # Not before the boot delay (the world polls every 2 lab seconds).
        assert lab_clock.now() - scaled_at >= BOOT
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
        wait_for(lab_clock, lambda: client.node.get_node(node["ID"])["Status"] == "down", 30, "the node to go down")
        assert world.node_id(instance_id) == node["ID"] and not world.errors
    finally:
        world.stop()


def test_mig_instances_become_nodes_and_go_down(nomad_lab, gcp_lab, lab_clock):
    gcp_lab.create_template("proj", "nomad-clients-1")
    gcp_lab.create_mig("proj", "us-east1-b", "nomad-client-group", "nomad-clients-1", 2, "nomad-client",
                       update_policy={"type": "OPPORTUNISTIC"})
    world = World(lab_clock, nomad_lab, gcp=gcp_lab, aws=False, boot_delay=BOOT, poll_interval=2.0)
    world.start()
    try:
        client = client_for(nomad_lab)
        assert len(_ready(client)) == 2
        session = AuthorizedSession(AnonymousCredentials())
        mig_url = gcp_lab.base_url + "/compute/v1/projects/proj/zones/us-east1-b/instanceGroupManagers/nomad-client-group"
        assert session.post(mig_url + "/resize", params={"size": 3}).status_code == 200
        wait_for(lab_clock, lambda: len(_ready(client)) == 3, 10 + 3 * BOOT, "the new node")
        new_name = (set(_ready(client)) - {i["name"] for i in gcp_lab.removed}).pop()
        node = [n for n in client.nodes.get_nodes() if n["Name"] == new_name][0]
        assert client.node.get_node(node["ID"])["Attributes"]["unique.hostname"] == new_name
        victim = gcp_lab.instances("proj", "us-east1-b", "nomad-client-group")[0]
        victim_node = world.node_id(victim["id"])
        nomad_lab.submit_job("unlucky", duration=10_000)
        answer = session.post(mig_url + "/deleteInstances", json={"instances": ["zones/us-east1-b/instances/" + victim["name"]]})
        assert answer.status_code == 200
        wait_for(lab_clock, lambda: client.node.get_node(victim_node)["Status"] == "down", 30, "the node to go down")
        assert gcp_lab.mig("proj", "us-east1-b", "nomad-client-group")["targetSize"] == 2
    finally:
        world.stop()


def test_instances_whose_agent_never_starts_never_become_nodes(nomad_lab, gcp_lab, lab_clock):
    gcp_lab.create_template("proj", "good")
    gcp_lab.create_template("proj", "bad-user-data")
    gcp_lab.create_mig("proj", "z", "group", "good", 1, "nomad-client", update_policy={"type": "OPPORTUNISTIC"})
    world = World(lab_clock, nomad_lab, gcp=gcp_lab, aws=False, boot_delay=BOOT, poll_interval=2.0)
    world.boot_failure = lambda info: info.get("template") == "bad-user-data"
    world.start()
    try:
        session = AuthorizedSession(AnonymousCredentials())
        url = gcp_lab.base_url + "/compute/v1/projects/proj/zones/z/instanceGroupManagers/group"
        session.post(url + "/setInstanceTemplate", json={"instanceTemplate": "global/instanceTemplates/bad-user-data"})
        session.post(url + "/resize", params={"size": 2})
        wait_for(lab_clock, lambda: any(i["broken"] for i in world.instances()), 200, "the broken instance to run")
        lab_clock.sleep(2 * BOOT)
        assert len(nomad_lab.nodes()) == 1 and gcp_lab.mig("proj", "z", "group")["status"]["isStable"]
        broken = [i for i in world.instances() if i["broken"]][0]
        assert broken["node_id"] is None and world.node_id(broken["instance_id"]) is None
    finally:
        world.stop()


def test_proactive_template_change_rolls_the_group_without_draining(nomad_lab, gcp_lab, lab_clock):
    """Why the roll must not leave a MIG PROACTIVE: GCP replaces instances on its own and jobs die."""
    gcp_lab.create_template("proj", "tpl-a")
    gcp_lab.create_template("proj", "tpl-b")
    gcp_lab.create_mig("proj", "z", "group", "tpl-a", 2, "nomad-client")  # PROACTIVE, surge 1, unavailable 1
    world = World(lab_clock, nomad_lab, gcp=gcp_lab, aws=False, boot_delay=BOOT, poll_interval=2.0, slots=2)
    world.start()
    try:
        for number in range(4):
            nomad_lab.submit_job("build-%d" % number, duration=10_000)
        session = AuthorizedSession(AnonymousCredentials())
        url = gcp_lab.base_url + "/compute/v1/projects/proj/zones/z/instanceGroupManagers/group"
        session.patch(url, json={"instanceTemplate": "global/instanceTemplates/tpl-b"})
        wait_for(lab_clock, lambda: gcp_lab.mig("proj", "z", "group")["status"]["versionTarget"]["isReached"]
                 and gcp_lab.mig("proj", "z", "group")["status"]["isStable"], 400, "the proactive roll")
        assert {i["template"] for i in gcp_lab.instances("proj", "z", "group")} == {"tpl-b"}
        wait_for(lab_clock, lambda: nomad_lab.stats()["killed"] == 4, 30, "the old nodes to go down")
        assert nomad_lab.stats()["killed_by_reason"] == {"node_down": 4}
    finally:
        world.stop()


def test_job_feeder_is_deterministic_and_keeps_nodes_busy(nomad_lab, lab_clock):
    for number in range(3):
        nomad_lab.register_node("n%d" % number, slots=4)
    feeder = JobFeeder(lab_clock, nomad_lab, rate_per_minute=30, duration_range=(30, 120), seed=7)
    feeder.start()
    try:
        wait_for(lab_clock, lambda: len(feeder.submitted) >= 20, 600, "twenty jobs")
    finally:
        feeder.stop()
    stats = nomad_lab.stats()
    assert stats["running"] + stats["completed"] + stats["pending"] == len(feeder.submitted)
    assert stats["killed"] == 0
    # Same seed, same arrivals and durations (relative to each feeder's start).
    replay = JobFeeder(lab_clock, _Recorder(), rate_per_minute=30, duration_range=(30, 120), seed=7)
    replay.feed_until(lab_clock.now() + 10_000)
    gaps = [b[1] - a[1] for a, b in zip(replay.submitted, replay.submitted[1:])]
    original = [b[1] - a[1] for a, b in zip(feeder.submitted, feeder.submitted[1:])]
    assert [round(g, 6) for g in gaps[:10]] == [round(g, 6) for g in original[:10]]
    assert [job[2] for job in replay.submitted[:10]] == [job[2] for job in feeder.submitted[:10]]


class _Recorder:  # pylint: disable=too-few-public-methods
    """Takes submissions without a Nomad behind it."""

    def __init__(self):
        self.jobs = []

    def submit_job(self, job_id, duration=None, at=None, **_options):
        self.jobs.append((job_id, duration, at))
