#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pod_exec
short_description: Run a command in a container of a Kubernetes Pod (pods/exec) and return its output and exit code
version_added: 0.1.0
description:
  - Runs O(command) in O(container) of O(pod), as C(kubectl exec) does, and returns its standard output, standard
    error and exit code. A command that exits non-zero does not fail the task; test RV(rc) in C(failed_when).
  - The same options and results as C(kubernetes.core.k8s_exec) for the calls the collection's roles make, at a
    fraction of its CPU cost (it talks to the exec endpoint with the websocket client alone, where C(k8s_exec)
    imports every API group of the C(kubernetes) library on each call).
  - "In check mode the command is not run (an exec can change anything), and the result says so. Give the task
    C(check_mode: false) for a command that only reads."
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.k8s_auth
options:
  namespace:
    description:
      - The namespace of the Pod.
    type: str
    required: true
  pod:
    description:
      - The name of the Pod.
    type: str
    required: true
  container:
    description:
      - The container to run the command in. Required when the Pod has several.
    type: str
  command:
    description:
      - The command, split into arguments as a POSIX shell would (C(shlex.split)) but not run by a shell; use
        C(bash -c '...') for pipes, variables and C(&&).
    type: str
    required: true
  timeout:
    description:
      - Seconds the command may run. When they pass, the task fails and says that the command may still be running
        in the Pod. Unset, the task waits until the command ends (a dump of a large database can take hours).
    type: float
notes:
  - The impersonation header (O(impersonate_user)) is not sent on the exec's websocket, so the module refuses it.
"""

EXAMPLES = r"""
- name: Read the featureCompatibilityVersion of the internal MongoDB
  circleci.server.pod_exec:
    namespace: circleci-server
    pod: mongodb-0
    container: mongodb
    command: >-
      bash -c 'mongosh -u root -p "$MONGODB_ROOT_PASSWORD" --quiet --eval
      "JSON.stringify(db.adminCommand({getParameter: 1, featureCompatibilityVersion: 1}))"'
  register: fcv
  changed_when: false
  check_mode: false
  failed_when: fcv.rc != 0
"""

RETURN = r"""
rc:
  description: The command's exit code (null in check mode, where it is not run).
  returned: always
  type: int
  sample: 0
return_code:
  description: The same as RV(rc) (the name C(kubernetes.core.k8s_exec) also returns).
  returned: always
  type: int
stdout:
  description: What the command wrote to its standard output.
  returned: always
  type: str
stderr:
  description: What the command wrote to its standard error.
  returned: always
  type: str
"""

import shlex

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.k8s import (
    HAS_K8S,
    K8S_AUTH_ARGSPEC,
    K8sError,
    api_client_from_params,
    check_names,
    missing_library_message,
    pod_exec,
)


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        pod=dict(type="str", required=True),
        container=dict(type="str"),
        command=dict(type="str", required=True),
        timeout=dict(type="float"),
    )
    argument_spec.update(K8S_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not HAS_K8S:
        module.fail_json(msg=missing_library_message())
    if params["impersonate_user"]:
        module.fail_json(msg="impersonate_user cannot be used with pod_exec: the exec's websocket does not carry the "
                             "impersonation header. Use credentials that may create pods/exec themselves.")
    if params["timeout"] is not None and params["timeout"] <= 0:
        module.fail_json(msg="timeout is %g: give the seconds the command may run (more than 0), or leave it unset to "
                             "wait until it ends." % params["timeout"])
    try:
        argv = shlex.split(params["command"])
    except ValueError as exc:
        module.fail_json(msg="command cannot be split into arguments (%s): check its quotes." % exc)
    if not argv:
        module.fail_json(msg="command is empty: give the command to run in the container.")
    try:
        check_names(params, {"namespace": "namespace"})  # the Pod's name is quoted into the URL
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    if module.check_mode:
        module.exit_json(changed=True, rc=None, return_code=None, stdout="", stderr="",
                         msg="Check mode: the command was not run in %s/%s." % (params["namespace"], params["pod"]))
    try:
        rc, stdout, stderr = pod_exec(api_client_from_params(params), params["namespace"], params["pod"], argv,
                                      container=params["container"], timeout=params["timeout"])
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, rc=rc, return_code=rc, stdout=stdout, stderr=stderr)


if __name__ == "__main__":
    main()
