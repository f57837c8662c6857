"""The AWS stand-in driven by the aws CLI and by amazon.aws modules through ansible-playbook."""
from __future__ import annotations

import json
import re
import subprocess

from tests.integration.lab_aws.conftest import logged


def _cli(ansible_env, lab, *argv, endpoint=True):
    env = dict(ansible_env, **lab.env())
    if endpoint:
        argv = argv + ("--endpoint-url", lab.url)
    else:
        env["AWS_ENDPOINT_URL"] = lab.url
    proc = subprocess.run(["aws", *argv, "--output", "json"], env=env, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_aws_cli_sees_the_groups(aws_lab, ansible_env):
    ec2 = aws_lab.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="nomad", LaunchTemplateData={"ImageId": aws_lab.image_id(), "InstanceType": "m5.large"})
    aws_lab.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="nomad-clients", MinSize=0, MaxSize=6, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateName": "nomad", "Version": "$Latest"}, AvailabilityZones=["us-east-1a"])
    aws_lab.request_log.clear()
    groups = _cli(ansible_env, aws_lab, "autoscaling", "describe-auto-scaling-groups")["AutoScalingGroups"]
    assert [(g["AutoScalingGroupName"], len(g["Instances"])) for g in groups] == [("nomad-clients", 2)]
    _cli(ansible_env, aws_lab, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "nomad-clients",
         "--desired-capacity", "3", endpoint=False)
    groups = _cli(ansible_env, aws_lab, "autoscaling", "describe-auto-scaling-groups", endpoint=False)["AutoScalingGroups"]
    assert len(groups[0]["Instances"]) == 3
    assert logged(aws_lab) == [("autoscaling/SetDesiredCapacity", 200)]


TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/LAB"},
    "Condition": {"StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/LAB:sub": "system:serviceaccount:circleci-server:%s"}}}]}

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Nomad client group on a launch template
      amazon.aws.autoscaling_group:
        name: nomad-clients
        launch_template: {launch_template_name: nomad, version: "1"}
        min_size: 0
        max_size: 4
        desired_capacity: 2
        availability_zones: [us-east-1a]
        wait_for_instances: true
        wait_timeout: 30
    - name: Image of a Nomad client, tagged
      amazon.aws.ec2_ami:
        instance_id: "{{ instance_id }}"
        name: nomad-client-ami
        no_reboot: true
        wait: true
        tags: {role: nomad}
      # Like real EC2, the lab refuses a second image of the same name (the re-run below shows it).
      ignore_errors: true
    - name: Trust policy of the IRSA role names machine-provisioner
      amazon.aws.iam_role:
        name: circleci-vm-service
        assume_role_policy_document: "{{ trust | to_json }}"
        create_instance_profile: false
        purge_policies: false
    - name: The vm-service security group without port 2376
      amazon.aws.ec2_security_group:
        name: vm-service
        description: vm-service
        rules:
          - {proto: tcp, ports: [22], cidr_ip: 10.0.0.0/16}
        purge_rules: true
        purge_rules_egress: false
    - name: Versioned data bucket
      amazon.aws.s3_bucket:
        name: circleci-data
        versioning: true
"""


def _playbook(ansible_env, lab, tmp_path, extra_vars, *options):
    (tmp_path / "aws.yml").write_text(PLAYBOOK)
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    env = dict(ansible_env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", **lab.env())
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
                           str(tmp_path / "aws.yml"), *options], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # The default callback prints "TASK [<name>]" then "ok: [localhost]" or "changed: [localhost]".
    results, task = {}, None
    for line in proc.stdout.splitlines():
        match = re.match(r"^TASK \[(.*)\]", line)
        if match:
            task = match.group(1)
        elif task and re.match(r"^(ok|changed|fatal|skipping): \[localhost\]", line):
            results[task] = {"changed": line.startswith("changed"), "failed": line.startswith("fatal"), "line": line}
            task = None
    assert len(results) == 5, proc.stdout
    return results


def test_amazon_aws_modules_converge_then_stay_unchanged(aws_lab, ansible_env, tmp_path):
    ec2, iam = aws_lab.client("ec2"), aws_lab.client("iam")
    image = aws_lab.image_id()
    ec2.create_launch_template(LaunchTemplateName="nomad", LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"})
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    trust_old = json.loads(json.dumps(TRUST) % "vm-service")
    trust_new = json.loads(json.dumps(TRUST) % "machine-provisioner")
    iam.create_role(RoleName="circleci-vm-service", AssumeRolePolicyDocument=json.dumps(trust_old))
    group_id = ec2.create_security_group(GroupName="vm-service", Description="vm-service")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]} for port in (22, 2376)])
    extra = {"instance_id": instance_id, "trust": trust_new}

    # Check mode first, while every task has something to change: nothing may be written.
    aws_lab.request_log.clear()
    checked = _playbook(ansible_env, aws_lab, tmp_path, extra, "--check")
    assert logged(aws_lab) == [], checked

    first = _playbook(ansible_env, aws_lab, tmp_path, extra)
    assert all(result["changed"] for result in first.values()), {name: r["changed"] for name, r in first.items()}
    paths = [path for path, _status in logged(aws_lab)]
    for action in ("autoscaling/CreateAutoScalingGroup", "ec2/CreateImage", "iam/UpdateAssumeRolePolicy",
                   "ec2/RevokeSecurityGroupIngress", "s3/circleci-data", "s3/circleci-data?versioning"):
        assert action in paths, paths
    image = ec2.describe_images(Filters=[{"Name": "name", "Values": ["nomad-client-ami"]}])["Images"][0]
    assert {t["Key"]: t["Value"] for t in image["Tags"]} == {"role": "nomad"}
    # ec2_ami sends its tags for the snapshot too (TagSpecifications), which moto 5.2.5 refused.
    snapshot = ec2.describe_snapshots(SnapshotIds=[image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]} == {"role": "nomad"}
    rules = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    assert [rule["FromPort"] for rule in rules] == [22]
    policy = iam.get_role(RoleName="circleci-vm-service")["Role"]["AssumeRolePolicyDocument"]
    assert "machine-provisioner" in json.dumps(policy)
    assert aws_lab.client("s3").get_bucket_versioning(Bucket="circleci-data")["Status"] == "Enabled"

    aws_lab.request_log.clear()
    second = _playbook(ansible_env, aws_lab, tmp_path, extra)
    image_task = second.pop("Image of a Nomad client, tagged")
    assert image_task["failed"] and ("ec2/CreateImage", 400) in logged(aws_lab), image_task
    assert not any(result["changed"] for result in second.values()), {name: r["changed"] for name, r in second.items()}
    # autoscaling_group's re-run switches metrics collection off explicitly: moto 5.2.5 lacked that call.
    assert ("autoscaling/DisableMetricsCollection", 200) in logged(aws_lab)
