#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_firewall_port
short_description: Stop one GCP firewall rule from allowing one port (the rule deleted when it allowed nothing else)
version_added: 0.1.0
description:
  - Reads the firewall rule O(name) and takes O(port) out of its C(allowed) list - a C(PATCH) of C(allowed), or a
    C(DELETE) when the rule allowed only that port. A port range that contains O(port) is left alone and reported in
    RV(ranges_left) (split it by hand). A missing rule is no change.
  - For the CircleCI Server 4.3 upgrade - the vm-service machines' port 2376 (remote Docker) is no longer used.
  - Why not C(google.cloud.gcp_compute_firewall) - it replaces the whole rule, hard-codes the public endpoint and has no
    check mode.
  - Waits for the Operation; retries 429 and 5xx answers with backoff.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.gcp_compute
  - circleci.server.gcp_auth
attributes:
  check_mode:
    support: full
    description: Reads the rule and returns what it would do; writes nothing.
  diff_mode:
    support: full
    description: The rule's C(allowed) before and after (C(null) after a delete).
options:
  name:
    description: The firewall rule.
    type: str
    required: true
  port:
    description: The port the rule must no longer allow.
    type: int
    required: true
  protocol:
    description: The port's protocol.
    type: str
    default: tcp
"""

EXAMPLES = r"""
- name: Stop allowing port 2376 to the vm-service machines
  circleci.server.gcp_firewall_port:
    project: acme-circleci-prod
    name: circleci-server-vm-allow-docker
    port: 2376
"""

RETURN = r"""
action:
  description: V(none), V(patched) or V(deleted) (what was done, or would be in check mode).
  returned: success
  type: str
  sample: deleted
allowed:
  description: The rule's C(allowed) after the change; C(null) when deleted or missing.
  returned: success
  type: list
  elements: dict
ranges_left:
  description: Entries that still admit the port through a range or an all-ports entry.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.gcp_compute import (
    GcpComputeError,
    compute_client,
    compute_spec,
    without_port,
)


def main():
    spec = compute_spec()
    spec.update(name=dict(type="str", required=True), port=dict(type="int", required=True), protocol=dict(type="str", default="tcp"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    compute = compute_client(module)
    try:
        rule = compute.firewall(p["name"])
        if rule is None:
            module.exit_json(changed=False, action="none", allowed=None, ranges_left=[])
        before = rule.get("allowed") or []
        after, ranges = without_port(rule, p["protocol"], p["port"])
        if after == before:
            module.exit_json(changed=False, action="none", allowed=before, ranges_left=ranges)
        action = "deleted" if after is None else "patched"
        if not module.check_mode:
            if after is None:
                compute.delete_firewall(p["name"])
            else:
                compute.patch_firewall(p["name"], {"allowed": after})
    except GcpComputeError as e:
        module.fail_json(msg="Failed to take port %s/%s out of firewall rule %s of project %s: %s. Re-run to retry (the rule "
                             "was read first; a failed write changed nothing)." % (p["port"], p["protocol"], p["name"],
                                                                                   p["project"], e), status=e.status)
    module.exit_json(changed=True, action=action, allowed=after, ranges_left=ranges,
                     diff=dict(before={"name": p["name"], "allowed": before}, after={"name": p["name"], "allowed": after}))


if __name__ == "__main__":
    main()
