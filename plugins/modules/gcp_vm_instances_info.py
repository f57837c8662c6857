#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_vm_instances_info
short_description: List the GCP VMs that carry a label or whose name matches, in every zone of a project
version_added: 0.1.0
description:
  - Lists every VM of the project (Compute Engine C(instances.aggregatedList)) and returns those labelled
    O(label_name)=O(label_value) or named like O(name_pattern) - for the 4.3 upgrade, the VMs vm-service left running.
  - Why not C(google.cloud.gcp_compute_instance_info) - it reads one zone at a time and hard-codes the public endpoint.
  - Reads only; retries 429 and 5xx answers with backoff.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
  - circleci.server.gcp_compute
  - circleci.server.gcp_auth
options:
  label_name:
    description: The label the VMs carry.
    type: str
    default: managedby
  label_value:
    description: Its value.
    type: str
    default: circleci-vm-service
  name_pattern:
    description: A regular expression the VMs' names match (searched); empty for labels only.
    type: str
    default: "^vm-service-"
"""

EXAMPLES = r"""
- name: List the VMs vm-service left
  circleci.server.gcp_vm_instances_info:
    project: acme-circleci-prod
  register: leftovers
"""

RETURN = r"""
instances:
  description: The matching VMs.
  returned: success
  type: list
  elements: dict
  sample: [{"name": "vm-service-l1-7f3a", "zone": "us-central1-a", "status": "RUNNING", "labels": {"managedby": "circleci-vm-service"}}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.gcp_compute import (
    GcpComputeError,
    compute_client,
    compute_spec,
    matching_instances,
)


def main():
    spec = compute_spec()
    spec.update(label_name=dict(type="str", default="managedby"), label_value=dict(type="str", default="circleci-vm-service"),
                name_pattern=dict(type="str", default="^vm-service-"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        found = matching_instances(compute_client(module).instances(), p["label_name"], p["label_value"], p["name_pattern"])
    except GcpComputeError as e:
        module.fail_json(msg="Failed to list the VMs of project %s: %s. Check the project and the credentials "
                             "(compute.instances.list)." % (p["project"], e), status=e.status)
    module.exit_json(changed=False, instances=found)


if __name__ == "__main__":
    main()
