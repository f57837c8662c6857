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
  - circleci.server.request_timeout
requirements:
  - requests
  - google-auth (unless O(gcp_auth_kind=none))
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
  gcp_auth_kind:
    description:
      - How to authenticate. V(application) uses application default credentials, V(serviceaccount) the key in
        O(gcp_credentials_file), V(none) sends no credentials (only for a lab's stand-in of the API).
    type: str
    choices: [application, serviceaccount, none]
    default: application
  gcp_credentials_file:
    description:
      - Path to a service account key file (with O(gcp_auth_kind=serviceaccount)).
      - Also E(GCP_SERVICE_ACCOUNT_FILE) or E(GOOGLE_APPLICATION_CREDENTIALS).
    type: path
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

import json

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.circleci.server.plugins.module_utils.files import InputError, read_text
from ansible_collections.circleci.server.plugins.module_utils.network import REQUEST_TIMEOUT_SPEC, check_timeout

from ansible_collections.circleci.server.plugins.module_utils.upgrade_cloud.gcp_iam import (
    GcpIamError,
    ServiceAccountIam,
    bindings_view,
    check_member,
    check_service_account,
)

try:
    import requests
    HAS_REQUESTS = True
except ImportError:
    HAS_REQUESTS = False

try:
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession
    HAS_GOOGLE_AUTH = True
except ImportError:
    HAS_GOOGLE_AUTH = False

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
        gcp_auth_kind=dict(type="str", choices=["application", "serviceaccount", "none"], default="application"),
        gcp_credentials_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE", "GOOGLE_APPLICATION_CREDENTIALS"])),
        **REQUEST_TIMEOUT_SPEC
    )


def build_session(module, timeout):
    params = module.params
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"))
    if params["gcp_auth_kind"] == "none":
        return requests.Session()
    if not HAS_GOOGLE_AUTH:
        module.fail_json(msg=missing_required_lib("google-auth"))
    if params["gcp_auth_kind"] == "serviceaccount":
        path = params["gcp_credentials_file"]
        if not path:
            module.fail_json(msg="gcp_auth_kind=serviceaccount needs gcp_credentials_file, the path of a service account key file.")
        try:
            info = json.loads(read_text(path, "gcp_credentials_file", max_bytes=64 * 1024))
            from google.oauth2 import service_account  # pylint: disable=import-outside-toplevel
            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        except InputError as exc:
            module.fail_json(msg=str(exc))
        except (ValueError, KeyError, TypeError, AttributeError):
            module.fail_json(msg="gcp_credentials_file %s is not a service account key (a JSON document with "
                                 "type, client_email and private_key): download a key of the service account, or use "
                                 "gcp_auth_kind=application." % path)
    else:
        try:
            credentials, dummy = google.auth.default(scopes=SCOPES)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            module.fail_json(msg="No GCP credentials: %s Set GOOGLE_APPLICATION_CREDENTIALS, or use "
                                 "gcp_auth_kind=serviceaccount with gcp_credentials_file." % str(exc).split("\n", 1)[0])
    return AuthorizedSession(credentials, refresh_timeout=timeout)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    try:
        timeout = check_timeout(p["request_timeout"])
        check_service_account(p["service_account"])
        check_member(p["member"])
    except ValueError as exc:  # TimeoutOptionError is one
        module.fail_json(msg="%s Nothing was changed." % exc)
    iam = ServiceAccountIam(build_session(module, timeout), p["service_account"], project=p["project"],
                            base_url=p["gcp_base_url"], timeout=timeout)
    try:
        before, after, changed = iam.ensure(p["role"], p["member"], p["state"], p["replaces"], check_mode=module.check_mode)
    except GcpIamError as e:
        module.fail_json(msg="Failed to update the IAM policy of service account %s: %s. Nothing was written when the read "
                             "failed; re-run to retry." % (p["service_account"], e), status=e.status)
    module.exit_json(changed=changed, bindings=bindings_view(after), etag=(after or {}).get("etag") or "",
                     diff=dict(before={"bindings": bindings_view(before)}, after={"bindings": bindings_view(after)}))


if __name__ == "__main__":
    main()
