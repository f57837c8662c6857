#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: machine_provisioner_policy_info
short_description: The AWS IAM permissions policy CircleCI Server 4.3 machine-provisioner needs
version_added: 0.1.0
description:
  - Returns the 4.3 machine-provisioner permissions policy (P3-4.3 "Set up authentication") with the machines'
    security group and VPC filled in - tag value C(ManagedBy=circleci-machine-provisioner), no DLC volume actions.
  - The policy text is the one M(circleci.server.helm_values_migrate) prints as the 4.2 to 4.3 manual action
    (one copy, in C(plugins/module_utils/values/migrations.py)). Pass RV(policy) to M(amazon.aws.iam_policy).
  - Without O(vpc_id), reads the VPC of the security group (C(DescribeSecurityGroups)). Changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - circleci.server.request_timeout
options:
  security_group_id:
    description: The security group of the machines (C(machine_provisioner.providers.ec2.securityGroupId)).
    type: str
    required: true
  vpc_id:
    description: The VPC of the machines' subnets; when omitted, the VPC of O(security_group_id).
    type: str
"""

EXAMPLES = r"""
- name: Render the 4.3 policy
  circleci.server.machine_provisioner_policy_info:
    security_group_id: sg-0c1e5e7f1c3a40001
    vpc_id: vpc-0d4e5f6a7b8c90001
  register: mp_policy

- name: Put it on the IRSA role
  amazon.aws.iam_policy:
    iam_type: role
    iam_name: circleci-vm
    policy_name: circleci-machine-provisioner
    policy_json: "{{ mp_policy.policy | to_json }}"
"""

RETURN = r"""
vpc_id:
  description: The VPC named in the policy.
  returned: always
  type: str
  sample: vpc-0d4e5f6a7b8c90001
policy:
  description: The policy document.
  returned: always
  type: dict
  sample: {"Version": "2012-10-17", "Statement": []}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.circleci.server.plugins.module_utils.network import (
    REQUEST_TIMEOUT_SPEC,
    TimeoutOptionError,
    botocore_config,
    check_timeout,
    fail_aws,
)

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud.aws_iam import PolicyError, machine_provisioner_policy


def security_group_vpc(module, group_id, timeout):
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff(), config=botocore_config(timeout))
    try:
        groups = client.describe_security_groups(GroupIds=[group_id], aws_retry=True)["SecurityGroups"]
    except is_boto3_error_code(["InvalidGroup.NotFound", "InvalidGroupId.Malformed"]):
        groups = []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        fail_aws(module, client, e, "Failed to describe security group %s" % group_id)
    if not groups:
        module.fail_json(msg="Security group %s of the vm-service machines was not found: set it (the 4.2 values' "
                             "vm_service.providers.ec2.securityGroupId), or give vpc_id with it." % group_id)
    return groups[0].get("VpcId")


def main():
    module = AnsibleAWSModule(argument_spec=dict(security_group_id=dict(type="str", required=True),
                                                 vpc_id=dict(type="str"), **REQUEST_TIMEOUT_SPEC),
                              supports_check_mode=True)
    try:
        timeout = check_timeout(module.params["request_timeout"])
    except TimeoutOptionError as e:
        module.fail_json(msg=str(e))
    group_id, vpc_id = module.params["security_group_id"], module.params["vpc_id"]
    if group_id and str(group_id).startswith("sg-") and not vpc_id:
        vpc_id = security_group_vpc(module, group_id, timeout)
    try:
        policy = machine_provisioner_policy(group_id, vpc_id)
    except PolicyError as e:
        module.fail_json(msg="%s Set them (the machines' security group and VPC)." % e)
    module.exit_json(changed=False, vpc_id=vpc_id, policy=policy)


if __name__ == "__main__":
    main()
