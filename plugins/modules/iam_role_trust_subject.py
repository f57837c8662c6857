#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: iam_role_trust_subject
short_description: Change only the OIDC service-account subject of an IAM role's trust policy
version_added: 0.1.0
description:
  - Reads the trust policy (assume role policy) of an IAM role, replaces the Kubernetes service-account subject
    O(from_subject) with O(to_subject) in every C(*:sub) condition, and writes the policy back. Every other
    statement, principal, action and condition is kept, in its order.
  - Made for the CircleCI Server 4.3 upgrade (UPG-4.3 step 5), where the IRSA role of C(vm-service) must trust
    C(system:serviceaccount:<namespace>:machine-provisioner) instead.
  - Why not M(amazon.aws.iam_role) - its O(amazon.aws.iam_role#module:assume_role_policy_document) replaces the whole
    trust policy (a read-edit-write in a playbook races with other edits and is easy to get wrong), it purges
    managed policies by default, and it returns no C(diff) for the trust policy, so C(--diff) would not show
    the change. This module edits one value and returns the policy before and after.
  - Idempotent - when the policy already names O(to_subject) and not O(from_subject), nothing is written.
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
    description: Reads the role and returns the policy it would write; writes nothing.
  diff_mode:
    support: full
    description: The trust policy before and after.
options:
  role_name:
    description: The IAM role (name, not ARN).
    type: str
    required: true
  from_subject:
    description: The subject to replace, for example C(system:serviceaccount:circleci-server:vm-service).
    type: str
    required: true
  to_subject:
    description:
      - The subject to trust instead, for example C(system:serviceaccount:circleci-server:machine-provisioner).
      - Exactly one service account, C(system:serviceaccount:<namespace>:<name>); wildcards (V(*), V(?)) are refused
        because they would let every matching service account of the cluster assume the role.
    type: str
    required: true
  keep_from_subject:
    description:
      - Add O(to_subject) beside O(from_subject) (either service account may assume the role) instead of replacing it.
      - Useful to keep a 4.2 rollback possible; remove the old subject later by running again with V(false).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Trust the machine-provisioner service account instead of vm-service
  circleci.server.iam_role_trust_subject:
    role_name: circleci-vm
    from_subject: system:serviceaccount:circleci-server:vm-service
    to_subject: system:serviceaccount:circleci-server:machine-provisioner
"""

RETURN = r"""
role_name:
  description: The role.
  returned: always
  type: str
  sample: circleci-vm
trust_policy:
  description: The trust policy after the change (the current one when nothing changed; the planned one in check mode).
  returned: always
  type: dict
  sample: {"Version": "2012-10-17", "Statement": []}
subjects:
  description: The C(*:sub) condition values of the trust policy after the change.
  returned: always
  type: list
  elements: str
  sample: ["system:serviceaccount:circleci-server:machine-provisioner"]
diff:
  description: The trust policy before and after (shown with C(--diff)).
  returned: always
  type: dict
  sample: {"before": {}, "after": {}}
"""

import json

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

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud.aws_iam import (
    PolicyError,
    check_subject,
    normalise_document,
    replace_subject,
    subjects,
)


def argument_spec():
    return dict(
        role_name=dict(type="str", required=True),
        from_subject=dict(type="str", required=True),
        to_subject=dict(type="str", required=True),
        keep_from_subject=dict(type="bool", default=False),
        **REQUEST_TIMEOUT_SPEC
    )


def main():
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        timeout = check_timeout(params["request_timeout"])
        check_subject(params["to_subject"], "to_subject")
    except (TimeoutOptionError, PolicyError) as e:
        module.fail_json(msg="%s Nothing was changed." % e)
    client = module.client("iam", retry_decorator=AWSRetry.jittered_backoff(), config=botocore_config(timeout))
    try:
        role = client.get_role(RoleName=params["role_name"], aws_retry=True)["Role"]
    except is_boto3_error_code("NoSuchEntity"):
        module.fail_json(msg="IAM role %s does not exist: set the role that vm-service assumes (IRSA), or use IAM user keys instead."
                         % params["role_name"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        fail_aws(module, client, e, "Failed to read IAM role %s" % params["role_name"])
    before = normalise_document(role.get("AssumeRolePolicyDocument"))
    try:
        after, changed = replace_subject(before, params["from_subject"], params["to_subject"], params["keep_from_subject"])
    except PolicyError as e:
        module.fail_json(msg="Cannot update the trust policy of IAM role %s: %s" % (params["role_name"], e), trust_policy=before)
    if changed and not module.check_mode:
        try:
            client.update_assume_role_policy(RoleName=params["role_name"], PolicyDocument=json.dumps(after), aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            fail_aws(module, client, e, "Failed to update the trust policy of IAM role %s (nothing else was changed; "
                     "re-run to retry)" % params["role_name"])
    module.exit_json(changed=changed, role_name=params["role_name"], trust_policy=after, subjects=subjects(after),
                     diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
