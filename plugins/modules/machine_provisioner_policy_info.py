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
  - Reads nothing remote, changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
attributes:
  check_mode:
    support: full
    description: Computes the same result.
  diff_mode:
    support: none
    description: Returns data only.
options:
  security_group_id:
    description: The security group of the machines (C(machine_provisioner.providers.ec2.securityGroupId)).
    type: str
    required: true
  vpc_id:
    description: The VPC of the machines' subnets.
    type: str
    required: true
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
policy:
  description: The policy document.
  returned: always
  type: dict
  sample: {"Version": "2012-10-17", "Statement": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud.aws_iam import PolicyError, machine_provisioner_policy


def main():
    module = AnsibleModule(argument_spec=dict(security_group_id=dict(type="str", required=True),
                                              vpc_id=dict(type="str", required=True)),
                           supports_check_mode=True)
    try:
        policy = machine_provisioner_policy(module.params["security_group_id"], module.params["vpc_id"])
    except PolicyError as e:
        module.fail_json(msg="%s Set them (the machines' security group and VPC)." % e)
    module.exit_json(changed=False, policy=policy)


if __name__ == "__main__":
    main()
