#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_service_account_iam_member
short_description: Add, remove or move one member of a role on a GCP service account's IAM policy
version_added: 0.1.0
description:
  - Reads the IAM policy on a service account (C(getIamPolicy)), edits the unconditional binding of O(role) and
    writes it back (C(setIamPolicy)) with the etag it read, so a concurrent change is never overwritten (a stale
    etag re-reads and retries). Every other binding, conditional bindings included, is kept.
  - With O(replaces), the members listed are removed in the same write that adds O(member) - a move, for example
    the CircleCI Server 4.3 Workload Identity binding
    C(serviceAccount:<project>.svc.id.goog[<namespace>/vm-service]) -> C([<namespace>/machine-provisioner]).
  - Why not the C(google.cloud) modules - they hard-code the public
    endpoints (no lab, no private endpoint), have no check mode, and none edits a service account's own policy
    member by member. This module talks to IAM v1 REST at O(gcp_base_url).
  - Retries 429 and 5xx answers with a jittered exponential backoff.
author:
  - circleci.server maintainers (@circleci-server-ansible)
attributes:
  check_mode:
    support: full
    description: Reads the policy and returns the one it would write; writes nothing.
  diff_mode:
    support: full
    description: The policy's bindings (role to members) before and after.
extends_documentation_fragment:
  - circleci.server.gcp_auth
  - circleci.server.request_timeout
options:
  service_account:
    description: The service account's email (or its numeric unique ID).
    type: str
    required: true
  project:
    description: The service account's project; C(-) lets IAM infer it from the email.
    type: str
    default: "-"
  role:
    description: The role of the binding.
    type: str
    default: roles/iam.workloadIdentityUser
  member:
    description:
      - The member, for example C(serviceAccount:my-project.svc.id.goog[circleci-server/machine-provisioner]).
      - One principal, C(TYPE:ID); V(allUsers), V(allAuthenticatedUsers) and wildcards are refused.
    type: str
    required: true
  replaces:
    description: Members removed from the binding in the same write (with O(state=present)).
    type: list
    elements: str
    default: []
  state:
    description: Whether O(member) must be in the binding.
    type: str
    choices: [present, absent]
    default: present
  gcp_base_url:
    description: The IAM API base URL, for a private endpoint or a lab's stand-in.
    type: str
    default: https://iam.googleapis.com
"""

EXAMPLES = r"""
- name: Move the Workload Identity binding from vm-service to machine-provisioner
  circleci.server.gcp_service_account_iam_member:
    service_account: circleci-server-vm@acme-circleci-prod.iam.gserviceaccount.com
    project: acme-circleci-prod
    role: roles/iam.workloadIdentityUser
    member: serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/machine-provisioner]
    replaces:
      - serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/vm-service]
"""

RETURN = r"""
bindings:
  description: The policy's bindings after the change (planned in check mode), role to sorted members.
  returned: always
  type: dict
  sample: {"roles/iam.workloadIdentityUser": ["serviceAccount:p.svc.id.goog[circleci-server/machine-provisioner]"]}
etag:
  description: The policy's etag after the change (the one read, when nothing was written).
  returned: always
  type: str
  sample: BwYDq2nXW1c=
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.gcp_auth import authorised_session, gcp_auth_spec
from ansible_collections.circleci.server.plugins.module_utils.network import REQUEST_TIMEOUT_SPEC, check_timeout

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud.gcp_iam import (
    GcpIamError,
    ServiceAccountIam,
    bindings_view,
    check_member,
    check_service_account,
    failure_message,
)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def argument_spec():
    return dict(
        service_account=dict(type="str", required=True),
        project=dict(type="str", default="-"),
        role=dict(type="str", default="roles/iam.workloadIdentityUser"),
        member=dict(type="str", required=True),
        replaces=dict(type="list", elements="str", default=[]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        gcp_base_url=dict(type="str", default="https://iam.googleapis.com"),
        **gcp_auth_spec(),
        **REQUEST_TIMEOUT_SPEC
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        timeout = check_timeout(p["request_timeout"])
        check_service_account(p["service_account"])
        check_member(p["member"])
    except ValueError as exc:  # TimeoutOptionError is one
        module.fail_json(msg="%s Nothing was changed." % exc)
    iam = ServiceAccountIam(authorised_session(module, SCOPES, refresh_timeout=timeout), p["service_account"], project=p["project"],
                            base_url=p["gcp_base_url"], timeout=timeout)
    try:
        before, after, changed = iam.ensure(p["role"], p["member"], p["state"], p["replaces"], check_mode=module.check_mode)
    except GcpIamError as e:
        module.fail_json(msg=failure_message(p["service_account"], e), status=e.status)
    module.exit_json(changed=changed, bindings=bindings_view(after), etag=(after or {}).get("etag") or "",
                     diff=dict(before={"bindings": bindings_view(before)}, after={"bindings": bindings_view(after)}))


if __name__ == "__main__":
    main()
