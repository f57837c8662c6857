# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWS provider against moto (in process) and against a stub client for retries."""

from __future__ import annotations

import pytest

boto3 = pytest.importorskip("boto3")
moto = pytest.importorskip("moto")

from botocore.exceptions import ClientError  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.circleci.server.plugins.module_utils.roll.aws import (  # noqa: E402  pylint: disable=wrong-import-position
    LOCK_TAG,
    STATE_TAG,
    AwsAsgProvider,
    botocore_config,
)
from ansible_collections.circleci.server.plugins.module_utils.roll.model import ProviderError  # noqa: E402  pylint: disable=wrong-import-position

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from ansible_collections.circleci.server.tests.lab.aws import moto_patches  # instance refreshes, as the lab's AWS answers them
    moto_patches.install()
    with moto.mock_aws():
        yield boto3.client("autoscaling", region_name=REGION), boto3.client("ec2", region_name=REGION)


def ami(ec2, name):
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return ec2.create_image(InstanceId=instance, Name=name)["ImageId"]


def test_launch_template_default_version_change_outdates_old_instances(aws):
    autoscaling, ec2 = aws
    image_1, image_2 = ami(ec2, "nomad-1"), ami(ec2, "nomad-2")
    template = ec2.create_launch_template(LaunchTemplateName="nomad-clients-", LaunchTemplateData={"ImageId": image_1, "InstanceType": "t3.micro"})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=4, DesiredCapacity=3,
                                          LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
                                          AvailabilityZones=["us-east-1a"])
    provider = AwsAsgProvider("clients", autoscaling, ec2, sleep=lambda s: None)
    group = provider.describe()
    assert group.desired == 3 and group.max_size == 4 and len(group.instances) == 3
    assert all(i.up_to_date for i in group.instances)
    assert "version 1" in group.config
    ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={"ImageId": image_2})
    ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion="2")
    group = provider.describe()
    assert not any(i.up_to_date for i in group.instances)
    assert "version 1, the group uses version 2" in group.outdated()[0].reason
    provider.set_capacity(5)  # above MaxSize: raised first
    group = provider.describe()
    assert group.desired == 5 and group.max_size == 5
    assert len(group.current()) == 2 and len(group.outdated()) == 3
    old = group.outdated()[0].id
    provider.terminate([old])
    group = provider.describe()
    assert group.desired == 4 and old not in {i.id for i in group.live()}


def test_launch_configuration_with_new_image_outdates_old_instances(aws):
    autoscaling, ec2 = aws
    image_1, image_2 = ami(ec2, "nomad-1"), ami(ec2, "nomad-2")
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc-1", ImageId=image_1, InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=3, DesiredCapacity=2,
                                          LaunchConfigurationName="lc-1", AvailabilityZones=["us-east-1a"])
    provider = AwsAsgProvider("clients", autoscaling, ec2, sleep=lambda s: None)
    assert all(i.up_to_date for i in provider.describe().instances)
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc-2", ImageId=image_2, InstanceType="t3.micro")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="clients", LaunchConfigurationName="lc-2")
    group = provider.describe()
    assert len(group.outdated()) == 2 and "image" in group.outdated()[0].reason
    # image_id makes any other AMI outdated, whatever the configuration says
    group = AwsAsgProvider("clients", autoscaling, ec2, image_id=image_1).describe()
    # new instances would launch from image_2 and never be current: refused in the plan
    assert any("image_id %s differs from the image" % image_1 in b for b in group.blockers)
    assert not AwsAsgProvider("clients", autoscaling, ec2, image_id=image_2).describe().blockers


def test_state_tag_and_processes_round_trip(aws):
    autoscaling, ec2 = aws
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc-1", ImageId="ami-12c6146b", InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=3, DesiredCapacity=1,
                                          LaunchConfigurationName="lc-1", AvailabilityZones=["us-east-1a"])
    autoscaling.suspend_processes(AutoScalingGroupName="clients", ScalingProcesses=["AZRebalance"])
    provider = AwsAsgProvider("clients", autoscaling, ec2)
    assert provider.load_state() is None
    provider.save_state({"desired": 1, "max_size": 3, "suspended": []})
    assert AwsAsgProvider("clients", autoscaling, ec2).load_state() == {"desired": 1, "max_size": 3, "suspended": []}
    suspended = provider.suspend_scaling()
    assert suspended == ["AlarmNotification", "ScheduledActions"]  # AZRebalance was suspended by someone else
    provider.resume_scaling(suspended)
    asg = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["clients"])["AutoScalingGroups"][0]
    names = {p["ProcessName"] for p in asg["SuspendedProcesses"]}
    assert names == {"AZRebalance"}
    provider.clear_state()
    tags = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["clients"])["AutoScalingGroups"][0]["Tags"]
    assert STATE_TAG not in {t["Key"] for t in tags}


def test_missing_group_is_explained(aws):
    autoscaling, ec2 = aws
    with pytest.raises(ProviderError, match="circleci-nomad-clients-asg"):
        AwsAsgProvider("nope", autoscaling, ec2).describe()


class ThrottledClient:
    def __init__(self, failures, code="Throttling"):
        self.failures = failures
        self.code = code
        self.calls = 0

    def set_desired_capacity(self, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": "Rate exceeded"}}, "SetDesiredCapacity")
        return {}


def test_throttling_is_retried_with_jittered_backoff():
    sleeps = []
    client = ThrottledClient(3)
    provider = AwsAsgProvider("clients", client, None, sleep=sleeps.append, delay=1.0)
    provider._call(client, "set_desired_capacity", "set capacity", AutoScalingGroupName="clients", DesiredCapacity=2)
    assert client.calls == 4 and len(sleeps) == 3
    assert all(0 <= s <= 1.0 * 2 ** i for i, s in enumerate(sleeps))


def test_retries_run_out_and_other_errors_are_not_retried():
    client = ThrottledClient(99)
    with pytest.raises(ProviderError, match="Throttling"):
        AwsAsgProvider("clients", client, None, sleep=lambda s: None, retries=2)._call(client, "set_desired_capacity", "set capacity")
    assert client.calls == 3
    client = ThrottledClient(1, code="AccessDenied")
    with pytest.raises(ProviderError, match="SetDesiredCapacity"):
        AwsAsgProvider("clients", client, None, sleep=lambda s: None)._call(client, "set_desired_capacity", "set capacity")
    assert client.calls == 1


def lc_group(autoscaling, size=2, zones=("us-east-1a",)):
    autoscaling.create_launch_configuration(LaunchConfigurationName="lc-1", ImageId="ami-12c6146b", InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=size + 2, DesiredCapacity=size,
                                          LaunchConfigurationName="lc-1", AvailabilityZones=list(zones))


def test_an_active_instance_refresh_blocks_the_roll(aws):
    autoscaling, ec2 = aws
    lc_group(autoscaling)
    provider = AwsAsgProvider("clients", autoscaling, ec2)
    assert provider.describe().blockers == []
    refresh = autoscaling.start_instance_refresh(AutoScalingGroupName="clients")["InstanceRefreshId"]
    blockers = provider.describe().blockers
    assert len(blockers) == 1 and refresh in blockers[0] and "cancel-instance-refresh" in blockers[0]


def test_the_lock_refuses_a_second_owner_until_it_expires(aws):
    autoscaling, ec2 = aws
    lc_group(autoscaling)
    wall = {"t": 1_800_000_000.0}
    first = AwsAsgProvider("clients", autoscaling, ec2, wall=lambda: wall["t"])
    second = AwsAsgProvider("clients", autoscaling, ec2, wall=lambda: wall["t"])
    first.acquire_lock("host-a:1:aaaa", 600)
    assert second.lock_holder()["owner"] == "host-a:1:aaaa"
    with pytest.raises(ProviderError, match="host-a:1:aaaa"):
        second.acquire_lock("host-b:2:bbbb", 600)
    second.release_lock("host-b:2:bbbb")  # not its lock: left alone
    assert first.lock_holder()["owner"] == "host-a:1:aaaa"
    wall["t"] += 601  # the first run died: its lock expired
    assert second.lock_holder() is None
    second.acquire_lock("host-b:2:bbbb", 600)
    second.release_lock("host-b:2:bbbb")
    tags = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["clients"])["AutoScalingGroups"][0]["Tags"]
    assert LOCK_TAG not in {t["Key"] for t in tags}


def test_azrebalance_is_not_resumed_with_zones_out_of_balance():
    provider = AwsAsgProvider("clients", None, None)

    def group(zones):
        return {"AvailabilityZones": ["us-east-1a", "us-east-1b"],
                "Instances": [{"InstanceId": "i-%d" % n, "AvailabilityZone": z, "LifecycleState": "InService"} for n, z in enumerate(zones)]}
    provider._asg = lambda: group(["us-east-1a", "us-east-1b", "us-east-1a", "us-east-1b"])
    assert provider.unsafe_to_resume(["AZRebalance", "ScheduledActions"]) == {}
    provider._asg = lambda: group(["us-east-1a", "us-east-1a", "us-east-1a", "us-east-1b"])
    unsafe = provider.unsafe_to_resume(["AZRebalance", "ScheduledActions"])
    assert list(unsafe) == ["AZRebalance"] and "us-east-1a: 3, us-east-1b: 1" in unsafe["AZRebalance"]


def test_a_refused_endpoint_fails_within_api_timeout():
    import time
    client = boto3.client("autoscaling", region_name=REGION, endpoint_url="http://127.0.0.1:9", aws_access_key_id="x",
                          aws_secret_access_key="y", config=botocore_config(4))
    provider = AwsAsgProvider("clients", client, None, api_timeout=4)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="api_timeout=4s"):
        provider.describe()
    assert time.monotonic() - started < 8


class CountingClient:
    """A boto3 client that counts the operations called through it."""

    def __init__(self, client):
        self._client = client
        self.calls = []

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.calls.append(name)
            return attribute(*args, **kwargs)
        return counted


def test_a_poll_reads_the_group_once_and_describes_only_new_instances(aws):
    autoscaling, ec2 = aws
    ec2.create_launch_template(LaunchTemplateName="nomad-clients-", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=8, DesiredCapacity=3,
                                          LaunchTemplate={"LaunchTemplateName": "nomad-clients-", "Version": "$Latest"},
                                          AvailabilityZones=["us-east-1a"])
    counting_asg, counting_ec2 = CountingClient(autoscaling), CountingClient(ec2)
    provider = AwsAsgProvider("clients", counting_asg, counting_ec2)
    provider.describe()
    assert "describe_instance_refreshes" in counting_asg.calls and "describe_launch_template_versions" in counting_ec2.calls
    counting_asg.calls.clear()
    counting_ec2.calls.clear()
    assert len(provider.poll().instances) == 3
    assert counting_asg.calls == ["describe_auto_scaling_groups"] and counting_ec2.calls == []
    # a new template version: the group's reference ($Latest) is the same, the poll keeps the resolved version 1;
    # the next full describe sees version 2
    ec2.create_launch_template_version(LaunchTemplateName="nomad-clients-", SourceVersion="1", LaunchTemplateData={"InstanceType": "t3.small"})
    autoscaling.set_desired_capacity(AutoScalingGroupName="clients", DesiredCapacity=5)
    group = provider.poll()
    assert counting_ec2.calls == ["describe_instances"]  # the two new instances only
    assert len(group.instances) == 5 and len(group.current()) == 3  # launched from version 2, unknown to the poll yet
    group = provider.describe()
    assert len(group.current()) == 2 and "version 2" in group.config
    # the group's configuration reference changed: a poll resolves it again
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="clients",
                                          LaunchTemplate={"LaunchTemplateName": "nomad-clients-", "Version": "1"})
    assert len(provider.poll().current()) == 3


def test_an_instance_refresh_started_mid_roll_is_a_conflict(aws):
    autoscaling, ec2 = aws
    lc_group(autoscaling)
    provider = AwsAsgProvider("clients", autoscaling, ec2)
    assert provider.conflicts() == []
    autoscaling.start_instance_refresh(AutoScalingGroupName="clients")
    assert "cancel-instance-refresh" in provider.conflicts()[0]


def test_the_roll_starts_with_the_lock_and_state_in_one_write_and_reads_the_group_once_after_it(aws):
    """From the plan's full read to the first surge: one tag write (lock and state, with the processes about to be suspended), one
    read of the group to check the lock, the suspension, MaxSize, one poll, the surge: 5 calls between the plan and the surge (before:
    10, three of them tag writes and three group reads)."""
    autoscaling, ec2 = aws
    ec2.create_launch_template(LaunchTemplateName="nomad-clients-", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="clients", MinSize=0, MaxSize=3, DesiredCapacity=3,
                                          LaunchTemplate={"LaunchTemplateName": "nomad-clients-", "Version": "$Latest"},
                                          AvailabilityZones=["us-east-1a"])
    ec2.create_launch_template_version(LaunchTemplateName="nomad-clients-", SourceVersion="1", LaunchTemplateData={"InstanceType": "t3.small"})
    from ansible_collections.circleci.server.plugins.module_utils.roll.executor import RollOptions, Roller

    class NoNomad:
        def nodes(self):
            return []

    class Surged(Exception):
        pass
    counting_asg = CountingClient(autoscaling)
    provider = AwsAsgProvider("clients", counting_asg, CountingClient(ec2), sleep=lambda s: None)
    roller = Roller(provider, NoNomad(), RollOptions(batch_size="1", strategy="surge"))
    roller.plan()
    counting_asg.calls.clear()
    real_set_desired = autoscaling.set_desired_capacity

    def stop_after_the_surge(**kwargs):
        real_set_desired(**kwargs)
        raise Surged()
    counting_asg.set_desired_capacity = stop_after_the_surge
    roller._after_stop = lambda *args, **kwargs: None  # pylint: disable=protected-access
    roller._release_lock = lambda: None  # pylint: disable=protected-access
    with pytest.raises(Surged):
        roller.run()
    # then the surge (set_desired_capacity, not counted here)
    assert counting_asg.calls == ["describe_auto_scaling_groups", "describe_instance_refreshes",  # run()'s plan
                                  "create_or_update_tags", "describe_auto_scaling_groups", "suspend_processes", "update_auto_scaling_group",
                                  "describe_auto_scaling_groups"], counting_asg.calls  # the first poll
    tags = {t["Key"]: t["Value"] for t in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["clients"])["AutoScalingGroups"][0]["Tags"]}
    assert LOCK_TAG in tags and '"desired":3' in tags[STATE_TAG] and "AZRebalance" in tags[STATE_TAG]


def test_a_termination_hook_holds_terminated_instances_until_the_roll_completes_their_action(aws):
    """Terminating:Wait: the instance is no capacity (not live, desired decremented) and the roll lets it through with CONTINUE for
    every termination hook; a launch hook is not completed; with complete_lifecycle_actions=false it is left to the hook."""
    autoscaling, ec2 = aws
    lc_group(autoscaling, size=3)
    for name, transition in (("drain", "autoscaling:EC2_INSTANCE_TERMINATING"), ("logs", "autoscaling:EC2_INSTANCE_TERMINATING"),
                             ("warm", "autoscaling:EC2_INSTANCE_LAUNCHING")):
        autoscaling.put_lifecycle_hook(AutoScalingGroupName="clients", LifecycleHookName=name, LifecycleTransition=transition,
                                       HeartbeatTimeout=3600)
    from ansible_collections.circleci.server.tests.lab.aws import moto_patches
    provider = AwsAsgProvider("clients", autoscaling, ec2, sleep=lambda s: None)
    group = provider.describe()
    assert provider.termination_hooks() == ["drain", "logs"] and group.blockers == []
    first, second, third = sorted(inst.id for inst in group.instances)
    assert provider.terminate([first]) == [first]
    completed = [a for a in moto_patches.completed_lifecycle_actions("123456789012", REGION) if a["InstanceId"] == first]
    assert sorted((a["LifecycleHookName"], a["LifecycleActionResult"]) for a in completed) == [("drain", "CONTINUE"), ("logs", "CONTINUE")]
    group = provider.describe()
    assert first not in {inst.id for inst in group.instances} and group.desired == 2

    leaving = AwsAsgProvider("clients", autoscaling, ec2, sleep=lambda s: None, complete_lifecycle_actions=False)
    assert leaving.terminate([second]) == []
    group = leaving.describe()
    held = group.by_id()[second]
    assert held.state == "terminating_wait" and not held.live and group.desired == 1
    # an action the hook's own agent completed meanwhile is no error
    autoscaling.complete_lifecycle_action(AutoScalingGroupName="clients", LifecycleHookName="drain", InstanceId=second,
                                          LifecycleActionResult="CONTINUE")
    assert provider.complete_lifecycle_actions([second]) == [second]
    assert second not in {inst.id for inst in provider.describe().instances}
    assert third in {inst.id for inst in provider.describe().live()}
