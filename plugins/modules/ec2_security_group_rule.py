#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_security_group_rule
short_description: Add or revoke one rule of an EC2 security group, leaving every other rule alone
version_added: 0.1.0
description:
  - With O(state=absent), revokes the rules of the group for exactly O(protocol) O(from_port)-O(to_port), from the
    sources in O(cidr_ip)/O(cidr_ipv6)/O(source_group_id) or, when none is given, from every source. Rules for other
    ports, and wider port ranges that merely contain the port, are kept (they are listed in RV(overlapping_rules)).
  - With O(state=present), authorizes the rule for the given CIDRs when it is missing.
  - Made for the CircleCI Server 4.3 upgrade (UPG-4.3 step 9, remove port 2376 from the vm-service security
    group). M(amazon.aws.ec2_security_group) manages a whole group - its O(amazon.aws.ec2_security_group#module:purge_rules)
    defaults to true, so a task that lists only the rule it cares about deletes every other rule.
  - Every call retries throttling with a jittered backoff (amazon.aws's C(AWSRetry)).
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - circleci.server.request_timeout
attributes:
  check_mode:
    support: full
    description: Reads the group and returns the rules it would add or revoke; changes nothing.
  diff_mode:
    support: full
    description: The group's rules in the given direction, one line per source, before and after.
options:
  group_id:
    description: The security group ID (C(sg-...)).
    type: str
    required: true
  direction:
    description: Ingress or egress rules.
    type: str
    choices: [ingress, egress]
    default: ingress
  protocol:
    description:
      - C(tcp), C(udp), C(icmp), C(icmpv6), a protocol number (0-255), or C(-1) for all traffic.
      - Anything else is refused, with O(state=absent) too (a typo must not report that there was nothing to revoke).
    type: str
    default: tcp
  from_port:
    description: First port of the rule, 0-65535 (for ICMP, the type, -1 to 255). Out of range is refused.
    type: int
  to_port:
    description: Last port of the rule; defaults to O(from_port). Not lower than O(from_port).
    type: int
  cidr_ip:
    description: IPv4 sources. With O(state=absent) and no source at all, every source is revoked.
    type: list
    elements: str
    default: []
  cidr_ipv6:
    description: IPv6 sources.
    type: list
    elements: str
    default: []
  source_group_id:
    description: Source security group IDs (O(state=absent) only).
    type: list
    elements: str
    default: []
  description:
    description: Description of the rule added (O(state=present)).
    type: str
  state:
    description: Whether the rule must exist or not.
    type: str
    choices: [present, absent]
    default: absent
"""

EXAMPLES = r"""
- name: Remove port 2376 from the vm-service security group (only that rule)
  circleci.server.ec2_security_group_rule:
    group_id: sg-0c1e5e7f1c3a40001
    protocol: tcp
    from_port: 2376
    state: absent
"""

RETURN = r"""
group_id:
  description: The group.
  returned: always
  type: str
  sample: sg-0c1e5e7f1c3a40001
rules:
  description: The group's rules in O(direction) after the change (planned in check mode), one line per source.
  returned: always
  type: list
  elements: str
  sample: ["tcp 22 10.0.0.0/16 (SSH from the subnet)", "tcp 54782 0.0.0.0/0 (rerun with SSH)"]
revoked:
  description: The rules revoked (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["tcp 2376 10.0.0.0/16 (Docker TLS from the subnet)"]
authorized:
  description: The rules authorized (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
overlapping_rules:
  description: Other rules that also admit the port (wider ranges, all traffic); never changed, worth a look.
  returned: always
  type: list
  elements: str
  sample: []
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

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud import ec2_rules


def argument_spec():
    return dict(
        group_id=dict(type="str", required=True),
        direction=dict(type="str", choices=["ingress", "egress"], default="ingress"),
        protocol=dict(type="str", default="tcp"),
        from_port=dict(type="int"),
        to_port=dict(type="int"),
        cidr_ip=dict(type="list", elements="str", default=[]),
        cidr_ipv6=dict(type="list", elements="str", default=[]),
        source_group_id=dict(type="list", elements="str", default=[]),
        description=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="absent"),
        **REQUEST_TIMEOUT_SPEC
    )


def read_permissions(module, client, group_id, direction):
    try:
        groups = client.describe_security_groups(GroupIds=[group_id], aws_retry=True)["SecurityGroups"]
    except is_boto3_error_code(["InvalidGroup.NotFound", "InvalidGroupId.Malformed"]):
        groups = []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        fail_aws(module, client, e, "Failed to describe security group %s" % group_id)
    if not groups:
        module.fail_json(msg="Security group %s does not exist: check the group ID (the vm-service VMs' group, "
                             "machine_provisioner/vm_service.providers.ec2.securityGroupId in the values)." % group_id)
    return groups[0].get("IpPermissions" if direction == "ingress" else "IpPermissionsEgress") or []


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True,
                              required_if=[("state", "present", ("from_port",))])
    p = module.params
    from_port = p["from_port"]
    to_port = p["to_port"] if p["to_port"] is not None else from_port
    try:
        timeout = check_timeout(p["request_timeout"])
        protocol = ec2_rules.check_rule(p["protocol"], from_port, to_port, p["cidr_ip"], p["cidr_ipv6"],
                                        p["source_group_id"])
    except (TimeoutOptionError, ec2_rules.RuleError) as e:
        module.fail_json(msg="%s Nothing was changed." % e)
    if protocol != "-1" and from_port is None:
        module.fail_json(msg="from_port is required for protocol %s." % protocol)
    if p["state"] == "present" and not (p["cidr_ip"] or p["cidr_ipv6"]):
        module.fail_json(msg="state=present needs cidr_ip or cidr_ipv6 (the sources the rule admits).")
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff(), config=botocore_config(timeout))
    before = read_permissions(module, client, p["group_id"], p["direction"])
    revoke, authorize = [], None
    if p["state"] == "absent":
        revoke = ec2_rules.select(before, protocol, from_port, to_port, p["cidr_ip"] + p["cidr_ipv6"] + p["source_group_id"])
        after = ec2_rules.without(before, revoke)
    else:
        authorize = ec2_rules.missing(before, protocol, from_port, to_port, p["cidr_ip"], p["cidr_ipv6"], p["description"])
        after = before + ([authorize] if authorize else [])
    changed = bool(revoke or authorize)
    if changed and not module.check_mode:
        verb = "revoke" if revoke else "authorize"
        call = getattr(client, "%s_security_group_%s" % (verb, p["direction"]))
        try:
            call(GroupId=p["group_id"], IpPermissions=revoke or [authorize], aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            fail_aws(module, client, e, "Failed to %s the %s rule %s %s-%s of security group %s (other rules untouched; "
                     "re-run to retry)" % (verb, p["direction"], protocol, from_port, to_port, p["group_id"]))
        after = read_permissions(module, client, p["group_id"], p["direction"])
    module.exit_json(
        changed=changed, group_id=p["group_id"], rules=ec2_rules.flatten(after),
        revoked=ec2_rules.flatten(revoke), authorized=ec2_rules.flatten([authorize] if authorize else []),
        overlapping_rules=ec2_rules.containing(after, protocol, from_port) if from_port is not None else [],
        diff=dict(before={"group_id": p["group_id"], p["direction"]: ec2_rules.flatten(before)},
                  after={"group_id": p["group_id"], p["direction"]: ec2_rules.flatten(after)}))


if __name__ == "__main__":
    main()
