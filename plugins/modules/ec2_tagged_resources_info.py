#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_tagged_resources_info
short_description: List the EC2 instances and EBS volumes that carry a tag
version_added: 0.1.0
description:
  - Lists, in one call, the EC2 instances (in the given states) and the EBS volumes tagged O(tag_key)=O(tag_value),
    for example what CircleCI Server 4.2's vm-service left behind (C(ManagedBy=circleci-vm-service)) before the 4.3
    upgrade - machines vm-gc has not cleaned up yet and old DLC volumes.
  - Why not M(amazon.aws.ec2_instance_info) and M(amazon.aws.ec2_vol_info) - two module runs instead of one, and
    the latter fails on a volume described without C(SnapshotId) (as some EC2-compatible endpoints answer).
  - Read-only; pages through every result; retries throttling like amazon.aws (C(AWSRetry)).
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - circleci.server.request_timeout
options:
  tag_key:
    description: The tag key.
    type: str
    default: ManagedBy
  tag_value:
    description: The tag value.
    type: str
    required: true
  instance_states:
    description: The instance states to list.
    type: list
    elements: str
    default: [pending, running, stopping, stopped]
  volumes:
    description: Also list the EBS volumes.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: List what vm-service left
  circleci.server.ec2_tagged_resources_info:
    tag_value: circleci-vm-service
  register: leftovers
"""

RETURN = r"""
instances:
  description: The instances, sorted by ID.
  returned: always
  type: list
  elements: dict
  sample: [{"instance_id": "i-0123", "state": "running", "name": "vm-service-l1-medium", "instance_type": "m5.large",
            "launch_time": "2026-11-23T10:00:00+00:00"}]
volumes:
  description: The volumes, sorted by ID (empty when O(volumes=false)).
  returned: always
  type: list
  elements: dict
  sample: [{"volume_id": "vol-0123", "state": "available", "size": 100, "availability_zone": "us-east-1a", "attached": false}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.circleci.server.plugins.module_utils.network import (
    REQUEST_TIMEOUT_SPEC,
    TimeoutOptionError,
    botocore_config,
    check_timeout,
    fail_aws,
)


def _name(tags):
    return next((t.get("Value") for t in tags or [] if t.get("Key") == "Name"), "")


def instance_row(instance):
    launched = instance.get("LaunchTime")
    return {"instance_id": instance["InstanceId"], "state": (instance.get("State") or {}).get("Name", ""),
            "name": _name(instance.get("Tags")), "instance_type": instance.get("InstanceType", ""),
            "launch_time": launched.isoformat() if hasattr(launched, "isoformat") else str(launched or "")}


def volume_row(volume):
    return {"volume_id": volume["VolumeId"], "state": volume.get("State", ""), "size": volume.get("Size"),
            "availability_zone": volume.get("AvailabilityZone", ""), "attached": bool(volume.get("Attachments")),
            "name": _name(volume.get("Tags"))}


@AWSRetry.jittered_backoff()
def _pages(client, operation, key, **kwargs):
    rows = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        if key == "Reservations":
            rows.extend(i for r in page.get(key, []) for i in r.get("Instances", []))
        else:
            rows.extend(page.get(key, []))
    return rows


def main():
    module = AnsibleAWSModule(argument_spec=dict(
        tag_key=dict(type="str", default="ManagedBy", no_log=False),
        tag_value=dict(type="str", required=True),
        instance_states=dict(type="list", elements="str", default=["pending", "running", "stopping", "stopped"]),
        volumes=dict(type="bool", default=True),
        **REQUEST_TIMEOUT_SPEC
    ), supports_check_mode=True)
    p = module.params
    try:
        timeout = check_timeout(p["request_timeout"])
    except TimeoutOptionError as e:
        module.fail_json(msg=str(e))
    client = module.client("ec2", config=botocore_config(timeout))
    tagged = [{"Name": "tag:%s" % p["tag_key"], "Values": [p["tag_value"]]}]
    try:
        instances = _pages(client, "describe_instances", "Reservations",
                           Filters=tagged + [{"Name": "instance-state-name", "Values": p["instance_states"]}])
        volumes = _pages(client, "describe_volumes", "Volumes", Filters=tagged) if p["volumes"] else []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        fail_aws(module, client, e, "Failed to list the EC2 resources tagged %s=%s" % (p["tag_key"], p["tag_value"]))
    module.exit_json(changed=False,
                     instances=sorted((instance_row(i) for i in instances), key=lambda r: r["instance_id"]),
                     volumes=sorted((volume_row(v) for v in volumes), key=lambda r: r["volume_id"]))


if __name__ == "__main__":
    main()
