"""The lab's CircleCI Server 2.19 services box and its Nomad clients (scenarios ``box-2.19*``, ``kind: box-2.19``).

``bring_up_box(lab, scenario)`` starts, on 127.0.0.1:

- AWS (moto, ``tests/lab/aws``): a VPC and subnet, the services box's EC2 instance (tag ``Name`` =
  ``box.name``; its private address is the one the clients' user data points at), the clients' AMI, a launch
  configuration named as Terraform names it with the 2.18 user data, and the clients' Auto Scaling group on it.
  With ``aws.refuse_launch_configurations`` a new launch configuration is refused as in accounts created on or
  after 2024-10-01 (``tests/lab/aws/launch_configurations.py``);
- Nomad (``tests/lab/nomad.py``) and the world (``tests/lab/world.py``): the group's instances become Nomad
  nodes; the datacenter of each node is the ``datacenter = "..."`` of its instance's user data (so the clients
  of the old launch configuration are in ``us-east-1`` and those of the 2.19 user data in ``default``);
  ``nomad.jobs`` are CI jobs already running;
- the box's state model (``model.py``, HTTP, request log service ``box``) and the box itself: Debian's sshd
  (``sshd.py``) whose user finds the stand-in commands (``bin.py``) first on its PATH.

Scenario fields (``box-2.19/scenario.yaml``): ``box`` (``name``, ``instance_type``, ``replicated_version``,
``docker_package_version``, ``docker_held``, ``app_state``, ``sequence``, ``releases[{sequence, version,
required}]``, ``stop_seconds``, ``start_seconds``, ``apply_seconds``, ``default_free_kb``, ``disk_free_kb``),
``upgrade`` (the inventory's target: ``release_sequence``, ``release_version``, ``replicated_version``), ``aws``
(``region``, ``refuse_launch_configurations``, ``vpc``, ``services_image``, ``nomad_clients{asg,
launch_configuration{name, instance_type, key_name, image, security_group, user_data}}``), ``nomad``
(``old_datacenter``, ``datacenter``, ``boot_delay_seconds``, ``jobs[{id, duration}]``).

Not modelled: the box's OS (its file system is the host's, seen by an unprivileged user; only the commands
above are the box's), the Nomad server being an app container (its API answers while the app is stopped),
instance metadata, the clients' user data actually running (only its datacenter line is read), EBS snapshots'
content, and whatever model.py, sshd.py and launch_configurations.py say they do not model.
"""
from __future__ import annotations

import base64
import os
import re


from .. import yaml_c
from .bin import install_commands
from .model import BoxModel
from .sshd import SshBox

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_DATACENTER = re.compile(r'^\s*datacenter\s*=\s*"([^"]+)"', re.MULTILINE)


def _user_data_text(value) -> str:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = str(value or "")
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")
    except ValueError:
        return value


class _DatacenterFromUserData:
    """The Nomad stand-in as the world sees it: a node registers in the datacenter its user data names."""

    def __init__(self, nomad, aws, default: str):
        self._nomad = nomad
        self._aws = aws
        self._default = default

    def __getattr__(self, name):
        return getattr(self._nomad, name)

    def datacenter_of(self, instance_id: str) -> str:
        with self._aws.lock:
            instance = self._aws.ec2_backend().get_instance_by_id(instance_id)
            text = _user_data_text(getattr(instance, "user_data", "")) if instance is not None else ""
        match = _DATACENTER.search(text)
        return match.group(1) if match else self._default

    def register_node(self, name, attributes=None, **kwargs):
        instance_id = (attributes or {}).get("unique.platform.aws.instance-id")
        if instance_id and kwargs.get("datacenter") is None:
            kwargs["datacenter"] = self.datacenter_of(instance_id)
        return self._nomad.register_node(name, attributes, **kwargs)


def bring_up_box(lab, scenario: dict) -> None:
    from ..aws import AwsLab, launch_configurations  # pylint: disable=import-outside-toplevel
    from ..nomad import NomadLab  # pylint: disable=import-outside-toplevel
    from ..world import World  # pylint: disable=import-outside-toplevel

    spec, box_spec, nomad_spec = scenario["aws"], scenario["box"], scenario.get("nomad") or {}
    lab.aws = AwsLab(lab.clock, lab.request_log, lab.faults, region=spec["region"])
    lab.endpoints["aws"] = lab.aws.start()
    lab.register_stopper(lab.aws.stop)
    launch_configurations.install()
    launch_configurations.refuse(False)
    lab.files["aws_env"] = lab.aws.write_env_file(os.path.join(lab.state_dir, "aws.env"))
    ec2, asg = lab.aws.client("ec2"), lab.aws.client("autoscaling")
    vpc = spec["vpc"]
    ids = {vpc["id"]: ec2.create_vpc(CidrBlock=vpc["cidr"])["Vpc"]["VpcId"]}
    for subnet in vpc["subnets"]:
        ids[subnet["id"]] = ec2.create_subnet(VpcId=ids[vpc["id"]], CidrBlock=subnet["cidr"],
                                              AvailabilityZone=subnet["az"])["Subnet"]["SubnetId"]
    subnet_id = ids[vpc["subnets"][0]["id"]]
    image = spec["services_image"]
    ids[image["id"]] = ec2.register_image(Name=image["name"], RootDeviceName="/dev/sda1", Architecture="x86_64",
                                          VirtualizationType="hvm")["ImageId"]
    box = ec2.run_instances(ImageId=ids[image["id"]], InstanceType=box_spec.get("instance_type", "m5.2xlarge"),
                            MinCount=1, MaxCount=1, SubnetId=subnet_id, TagSpecifications=[
                                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": box_spec["name"]}]}])
    box_instance = box["Instances"][0]
    private_ip = box_instance["PrivateIpAddress"]
    clients = spec["nomad_clients"]
    config = clients["launch_configuration"]
    ids[config["image"]["id"]] = ec2.register_image(Name=config["image"]["name"] + "-nomad", RootDeviceName="/dev/sda1",
                                                    Architecture="x86_64", VirtualizationType="hvm")["ImageId"]
    group_spec = config["security_group"]
    ids[group_spec["id"]] = ec2.create_security_group(GroupName=group_spec["name"], Description=group_spec["name"],
                                                      VpcId=ids[vpc["id"]])["GroupId"]
    asg.create_launch_configuration(
        LaunchConfigurationName=config["name"], ImageId=ids[config["image"]["id"]], InstanceType=config["instance_type"],
        KeyName=config.get("key_name", ""), SecurityGroups=[ids[group_spec["id"]]],
        UserData=config["user_data"].replace("{services_private_ip}", private_ip),
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"VolumeSize": 200, "VolumeType": "gp2", "DeleteOnTermination": True}}])
    group = clients["asg"]
    asg.create_auto_scaling_group(AutoScalingGroupName=group["name"], LaunchConfigurationName=config["name"],
                                  MinSize=group["min_size"], MaxSize=group["max_size"],
                                  DesiredCapacity=group["desired_capacity"], VPCZoneIdentifier=subnet_id)
    launch_configurations.refuse(bool(spec.get("refuse_launch_configurations")))
    lab.ids = ids

    lab.nomad = NomadLab(lab.clock, lab.request_log, lab.faults, datacenter=nomad_spec.get("datacenter", "default"))
    lab.endpoints["nomad"] = lab.nomad.start()
    lab.register_stopper(lab.nomad.stop)
    nomad_view = _DatacenterFromUserData(lab.nomad, lab.aws, nomad_spec.get("old_datacenter", "us-east-1"))
    lab.world = World(lab.clock, nomad_view, aws_region=spec["region"], aws_lock=lab.aws.lock,
                      boot_delay=float(nomad_spec.get("boot_delay_seconds", 60)), aws_groups=[group["name"]])
    lab.world.start()
    lab.register_stopper(lab.world.stop)
    for job in nomad_spec.get("jobs") or []:
        lab.nomad.submit_job(job["id"], duration=float(job.get("duration", 3600)))

    ssh = start_box(lab, dict(box_spec, private_address=private_ip))
    _write_inventory(lab, scenario, ssh, box_instance["InstanceId"])
    lab.request_log.clear()


def start_box(lab, box_spec: dict) -> SshBox:
    """The box's state model and the box itself (sshd and the stand-in commands); also used by the migration lab."""
    lab.box = BoxModel(lab.clock, lab.request_log, lab.faults, spec=box_spec)
    lab.endpoints["box"] = lab.box.start()
    lab.register_stopper(lab.box.stop)
    ssh = SshBox(lab.state_dir)
    lab.register_stopper(ssh.stop)
    ssh.prepare()
    install_commands(ssh.bin_dir, lab.endpoints["box"], lab.clock.factor)
    port = ssh.start()
    lab.endpoints["box_ssh"] = "ssh://127.0.0.1:%d" % port
    lab.files.update(box_private_key=ssh.files["private_key"], box_root=ssh.root_dir)
    return ssh


def _write_inventory(lab, scenario, ssh, instance_id) -> None:
    """The inventory (services box over SSH, AWS and Nomad endpoints) and vars.yml; no secret in them."""
    upgrade = scenario.get("upgrade") or {}
    variables = {
        "circleci_lab": True,
        "circleci_lab_admin_url": lab.endpoints["admin"],
        "circleci_lab_box_url": lab.endpoints["box"],
        "circleci_aws_region": scenario["aws"]["region"],
        "circleci_aws_endpoint_url": lab.endpoints["aws"],
        "circleci_services_instance_id": instance_id,
        "circleci_aws_nomad_asg_name": scenario["aws"]["nomad_clients"]["asg"]["name"],
        "circleci_nomad_address": lab.endpoints["nomad"],
        "circleci_219_release_sequence": upgrade.get("release_sequence"),
        "circleci_219_release_version": str(upgrade.get("release_version", "")),
        "circleci_replicated_version": str(upgrade.get("replicated_version", "2.38.6")),
        "circleci_replicated_installer_base_url": lab.endpoints["box"],
        "circleci_nomad_old_datacenter": (scenario.get("nomad") or {}).get("old_datacenter", "us-east-1"),
        # Lab time runs fast: poll as often, and tell the Nomad roll how fast the lab's clock runs.
        "circleci_poll_delay": 1,
        "circleci_nomad_down_timeout": 60,
        "circleci_clock_factor": lab.clock.factor,
    }
    host = ssh.host_vars()
    inventory = {"all": {"vars": variables, "children": {"circleci_services_box": {"hosts": {"services-box": host}}}}}
    path = os.path.join(lab.state_dir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by `python -m tests.lab up %s`: the services box over SSH, AWS and Nomad.\n"
                     % lab.scenario_name)
        yaml_c.safe_dump(inventory, handle, default_flow_style=False, sort_keys=True)
    lab.files["inventory"] = path
    vars_path = os.path.join(lab.state_dir, "vars.yml")
    with open(vars_path, "w", encoding="utf-8") as handle:
        yaml_c.safe_dump(variables, handle, sort_keys=True)
    lab.files["vars"] = vars_path
    host_path = os.path.join(lab.state_dir, "box_host.yml")
    with open(host_path, "w", encoding="utf-8") as handle:
        yaml_c.safe_dump({"lab_box_host": host}, handle, sort_keys=True)
    lab.files["box_host"] = host_path
