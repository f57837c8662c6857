"""The AWS stand-in driven with boto3: moto plus the lab's additions, fixes, request log and faults."""
from __future__ import annotations

import base64
import socket
import stat
import time

import botocore.config
import botocore.exceptions
import pytest

from tests.integration.lab_aws.conftest import logged
from tests.lab.aws import AwsLab
from tests.lab.core import FaultInjector, LabClock, RequestLog


def _user_data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _group_with_template(lab, desired=3, version="1", **kwargs):
    """An ASG on launch template `nomad` (v1: "echo v1", v2 from v1 with "echo v2")."""
    ec2, asg = lab.client("ec2"), lab.client("autoscaling")
    ami = lab.image_id()
    ec2.create_launch_template(LaunchTemplateName="nomad", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "m5.large", "UserData": _user_data("echo v1")})
    ec2.create_launch_template_version(LaunchTemplateName="nomad", SourceVersion="1",
                                       LaunchTemplateData={"UserData": _user_data("echo v2")})
    asg.create_auto_scaling_group(AutoScalingGroupName="nomad-clients", MinSize=0, MaxSize=10, DesiredCapacity=desired,
                                  LaunchTemplate={"LaunchTemplateName": "nomad", "Version": version},
                                  AvailabilityZones=["us-east-1a"], **kwargs)
    return ec2, asg


def _instances(asg):
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nomad-clients"])["AutoScalingGroups"][0]["Instances"]


def _wait_for_refresh(asg, refresh_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        refresh = asg.describe_instance_refreshes(AutoScalingGroupName="nomad-clients",
                                                  InstanceRefreshIds=[refresh_id])["InstanceRefreshes"][0]
        if refresh["Status"] not in ("Pending", "InProgress") or time.monotonic() > deadline:
            return refresh
        time.sleep(0.05)


def test_asg_launches_a_template_version_created_with_user_data(aws_lab):
    ec2, asg = _group_with_template(aws_lab, desired=2, version="2")
    version = ec2.describe_launch_template_versions(LaunchTemplateName="nomad", Versions=["2"])["LaunchTemplateVersions"][0]
    # SourceVersion is honoured: version 2 keeps version 1's image and type.
    assert version["LaunchTemplateData"]["InstanceType"] == "m5.large"
    instances = _instances(asg)
    assert len(instances) == 2 and {i["LaunchTemplate"]["Version"] for i in instances} == {"2"}
    for instance in instances:
        user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        assert base64.b64decode(user_data["UserData"]["Value"]) == b"echo v2"
        tags = {t["Key"]: t["Value"] for t in ec2.describe_tags(
            Filters=[{"Name": "resource-id", "Values": [instance["InstanceId"]]}])["Tags"]}
        assert tags["aws:ec2launchtemplate:version"] == "2" and tags["aws:autoscaling:groupName"] == "nomad-clients"


def test_instances_keep_the_version_they_were_launched_with(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=2, version="1")
    asg.update_auto_scaling_group(AutoScalingGroupName="nomad-clients",
                                  LaunchTemplate={"LaunchTemplateName": "nomad", "Version": "2"})
    asg.set_desired_capacity(AutoScalingGroupName="nomad-clients", DesiredCapacity=3)
    assert sorted(i["LaunchTemplate"]["Version"] for i in _instances(asg)) == ["1", "1", "2"]


def test_instance_refresh_replaces_every_instance_in_batches(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=4, version="1")
    old = {i["InstanceId"] for i in _instances(asg)}
    refresh_id = asg.start_instance_refresh(
        AutoScalingGroupName="nomad-clients", Strategy="Rolling",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "nomad", "Version": "2"}},
        Preferences={"MinHealthyPercentage": 50, "InstanceWarmup": 30})["InstanceRefreshId"]
    first = asg.describe_instance_refreshes(AutoScalingGroupName="nomad-clients")["InstanceRefreshes"][0]
    assert first["InstanceRefreshId"] == refresh_id and first["Status"] == "InProgress"
    with pytest.raises(botocore.exceptions.ClientError, match="InstanceRefreshInProgress"):
        asg.start_instance_refresh(AutoScalingGroupName="nomad-clients")
    done = _wait_for_refresh(asg, refresh_id)
    assert (done["Status"], done["PercentageComplete"], done["InstancesToUpdate"]) == ("Successful", 100, 0)
    # Two batches of two (50 % healthy of 4), 30 lab seconds of warm-up each.
    assert (done["EndTime"] - done["StartTime"]).total_seconds() == pytest.approx(60, abs=1)
    instances = _instances(asg)
    assert len(instances) == 4 and not old & {i["InstanceId"] for i in instances}
    assert {i["LaunchTemplate"]["Version"] for i in instances} == {"2"}
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nomad-clients"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    with pytest.raises(botocore.exceptions.ClientError, match="ActiveInstanceRefreshNotFound"):
        asg.cancel_instance_refresh(AutoScalingGroupName="nomad-clients")


def test_instance_refresh_skip_matching_and_cancel(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=3, version="1")
    same = asg.start_instance_refresh(AutoScalingGroupName="nomad-clients",
                                      Preferences={"SkipMatching": True})["InstanceRefreshId"]
    assert _wait_for_refresh(asg, same)["InstancesToUpdate"] == 0
    before = {i["InstanceId"] for i in _instances(asg)}
    assert _wait_for_refresh(asg, same)["Status"] == "Successful"
    assert {i["InstanceId"] for i in _instances(asg)} == before
    slow = asg.start_instance_refresh(
        AutoScalingGroupName="nomad-clients", Preferences={"InstanceWarmup": 3600},
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateName": "nomad", "Version": "2"}})["InstanceRefreshId"]
    assert asg.cancel_instance_refresh(AutoScalingGroupName="nomad-clients")["InstanceRefreshId"] == slow
    refreshes = asg.describe_instance_refreshes(AutoScalingGroupName="nomad-clients")["InstanceRefreshes"]
    assert [r["Status"] for r in refreshes] == ["Cancelled", "Successful"]
    # One instance was replaced before the cancel; the group keeps its old launch template version.
    assert sorted(i["LaunchTemplate"]["Version"] for i in _instances(asg)) == ["1", "1", "2"]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nomad-clients"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "1"


def test_a_termination_hook_holds_the_instance_until_its_action_is_completed_or_times_out(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=2)
    first, second = sorted(i["InstanceId"] for i in _instances(asg))
    asg.put_lifecycle_hook(AutoScalingGroupName="nomad-clients", LifecycleHookName="drain",
                           LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=300)
    with pytest.raises(botocore.exceptions.ClientError, match="No active Lifecycle Action"):  # nothing waits on an InService one
        asg.complete_lifecycle_action(AutoScalingGroupName="nomad-clients", LifecycleHookName="drain",
                                      InstanceId=first, LifecycleActionResult="CONTINUE")
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nomad-clients"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 1
    assert {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]} == {first: "Terminating:Wait", second: "InService"}
    assert _ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    with pytest.raises(botocore.exceptions.ClientError, match="ValidationError"):
        asg.complete_lifecycle_action(AutoScalingGroupName="nomad-clients", LifecycleHookName="nope",
                                      InstanceId=first, LifecycleActionResult="CONTINUE")
    asg.complete_lifecycle_action(AutoScalingGroupName="nomad-clients", LifecycleHookName="drain",
                                  InstanceId=first, LifecycleActionResult="CONTINUE")
    (action,) = aws_lab.completed_lifecycle_actions()
    assert (action["InstanceId"], action["LifecycleActionResult"]) == (first, "CONTINUE")
    assert [i["InstanceId"] for i in _instances(asg)] == [second]
    assert _ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    # without decrement a replacement launches at once; nobody completes the action: the heartbeat timeout lets it go
    asg.terminate_instance_in_auto_scaling_group(InstanceId=second, ShouldDecrementDesiredCapacity=False)
    states = {i["InstanceId"]: i["LifecycleState"] for i in _instances(asg)}
    assert states.pop(second) == "Terminating:Wait" and list(states.values()) == ["InService"]
    time.sleep(aws_lab.clock.wall_seconds(300) + 0.3)
    assert second not in {i["InstanceId"] for i in _instances(asg)} and len(_instances(asg)) == 1


def test_metrics_collection_enable_adds_and_disable_removes(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=0)

    def metrics():
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["nomad-clients"])["AutoScalingGroups"][0]
        return sorted(m["Metric"] for m in group.get("EnabledMetrics", []))

    asg.enable_metrics_collection(AutoScalingGroupName="nomad-clients", Granularity="1Minute", Metrics=["GroupMinSize"])
    asg.enable_metrics_collection(AutoScalingGroupName="nomad-clients", Granularity="1Minute", Metrics=["GroupMaxSize"])
    assert metrics() == ["GroupMaxSize", "GroupMinSize"]
    asg.disable_metrics_collection(AutoScalingGroupName="nomad-clients", Metrics=["GroupMinSize"])
    assert metrics() == ["GroupMaxSize"]
    asg.enable_metrics_collection(AutoScalingGroupName="nomad-clients", Granularity="1Minute")
    assert len(metrics()) == 20
    asg.disable_metrics_collection(AutoScalingGroupName="nomad-clients")
    assert metrics() == []


def test_create_image_with_snapshot_tags_and_duplicate_names(aws_lab):
    ec2 = aws_lab.client("ec2")
    ami = ec2.describe_images(ImageIds=[aws_lab.image_id()])["Images"][0]
    instance_id = ec2.run_instances(ImageId=ami["ImageId"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=instance_id, Name="nomad-client-2026", NoReboot=True, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "role", "Value": "nomad"}]},
        {"ResourceType": "snapshot", "Tags": [{"Key": "role", "Value": "nomad-snapshot"}]}])["ImageId"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Tags"] == [{"Key": "role", "Value": "nomad"}]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["Tags"] == [{"Key": "role", "Value": "nomad-snapshot"}]
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ec2.create_image(InstanceId=instance_id, Name="nomad-client-2026")
    assert error.value.response["Error"]["Code"] == "InvalidAMIName.Duplicate"
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAMIName.Duplicate"):
        ec2.register_image(Name="nomad-client-2026", RootDeviceName="/dev/sda1")
    # An image of someone else (moto's Amazon images) does not block the name; a deregistered one frees it.
    ec2.create_image(InstanceId=instance_id, Name=ami["Name"])
    ec2.deregister_image(ImageId=image_id)
    ec2.create_image(InstanceId=instance_id, Name="nomad-client-2026")


def test_request_log_holds_mutating_actions_only(aws_lab):
    ec2, asg = _group_with_template(aws_lab, desired=1)
    aws_lab.request_log.clear()
    asg.describe_auto_scaling_groups()
    ec2.describe_instances()
    aws_lab.client("iam").list_roles()
    aws_lab.client("sts").get_caller_identity()
    with pytest.raises(botocore.exceptions.ClientError, match="DryRunOperation"):
        ec2.create_security_group(GroupName="x", Description="x", DryRun=True)
    assert logged(aws_lab) == []
    asg.set_desired_capacity(AutoScalingGroupName="nomad-clients", DesiredCapacity=2)
    aws_lab.client("s3").create_bucket(Bucket="circleci-data")
    aws_lab.client("s3").put_bucket_versioning(Bucket="circleci-data", VersioningConfiguration={"Status": "Enabled"})
    aws_lab.client("s3").list_objects_v2(Bucket="circleci-data")
    assert logged(aws_lab) == [("autoscaling/SetDesiredCapacity", 200), ("s3/circleci-data", 200),
                               ("s3/circleci-data?versioning", 200)]
    entry = RequestLog.read(aws_lab.request_log.path)[0]
    assert (entry["service"], entry["method"]) == ("aws", "POST")


def test_throttling_on_first_set_desired_capacity_is_retried(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=1)
    fault = aws_lab.faults.add("aws", "POST", r"^autoscaling/SetDesiredCapacity$", nth=1, status=400,
                               message="Throttling: Rate exceeded")
    response = asg.set_desired_capacity(AutoScalingGroupName="nomad-clients", DesiredCapacity=3)
    assert fault.fired and response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(_instances(asg)) == 3
    assert logged(aws_lab)[-2:] == [("autoscaling/SetDesiredCapacity", 400), ("autoscaling/SetDesiredCapacity", 200)]


@pytest.mark.parametrize("service, call, path, code", [
    ("ec2", lambda c: c.describe_instances(), "ec2/DescribeInstances", "InvalidParameterValue"),
    ("iam", lambda c: c.get_role(RoleName="x"), "iam/GetRole", "NoSuchEntity"),
    ("s3", lambda c: c.create_bucket(Bucket="b"), "s3/b", "AccessDenied"),
    ("autoscaling", lambda c: c.describe_auto_scaling_groups(), "autoscaling/DescribeAutoScalingGroups", "ValidationError"),
])
def test_faults_answer_in_each_protocol_error_format(aws_lab, service, call, path, code):
    client = aws_lab.client(service, config=botocore.config.Config(retries={"max_attempts": 1}))
    message = "%s: injected by the lab" % code if code != "ValidationError" else "injected"
    aws_lab.faults.add("aws", "*", "^%s$" % path.replace("?", r"\?"), status=403 if service == "s3" else 400, message=message)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        call(client)
    assert error.value.response["Error"]["Code"] == code


def test_env_file_and_stop_frees_the_port(tmp_path):
    clock = LabClock(10.0)
    lab = AwsLab(clock, RequestLog(str(tmp_path / "log.jsonl"), clock), FaultInjector(), region="eu-west-1")
    url = lab.start()
    try:
        assert lab.startup_seconds < 2.0
        path = lab.write_env_file(str(tmp_path / "aws.env"))
        assert stat.S_IMODE((tmp_path / "aws.env").stat().st_mode) == 0o600
        text = (tmp_path / "aws.env").read_text()
        assert "export AWS_ENDPOINT_URL=%s\n" % url in text and "export AWS_REGION=eu-west-1\n" in text
        assert path.endswith("aws.env")
        assert lab.client("sts").get_caller_identity()["Account"] == lab.account_id == "123456789012"
    finally:
        lab.stop()
        lab.stop()
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_group_limits_are_enforced_like_real_auto_scaling(aws_lab):
    _ec2, asg = _group_with_template(aws_lab, desired=2, version="1")
    asg.update_auto_scaling_group(AutoScalingGroupName="nomad-clients", MinSize=2, MaxSize=3)
    with pytest.raises(botocore.exceptions.ClientError, match="above max value 3"):
        asg.set_desired_capacity(AutoScalingGroupName="nomad-clients", DesiredCapacity=4)
    with pytest.raises(botocore.exceptions.ClientError, match="below min value 2"):
        asg.set_desired_capacity(AutoScalingGroupName="nomad-clients", DesiredCapacity=1)
    first = _instances(asg)[0]["InstanceId"]
    with pytest.raises(botocore.exceptions.ClientError, match="min size constraint"):
        asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    asg.update_auto_scaling_group(AutoScalingGroupName="nomad-clients", MinSize=0)
    asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Code"] == "ValidationError" and "No managed instance found" in info.value.response["Error"]["Message"]
