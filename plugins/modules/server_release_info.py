#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: server_release_info
short_description: Read the installed CircleCI Server release and the cluster's Kubernetes version
version_added: 0.1.0
description:
  - Reads the Kubernetes API server's version and the CircleCI Server helm release (from helm's release
    Secrets C(sh.helm.release.v1.<release>.v<N>), so no helm binary is needed), that is whether it exists,
    its chart version, revision and status.
  - Never returns the release's values, which hold secrets.
  - Reads only; changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
  - circleci.server.k8s_auth
options:
  namespace:
    description:
      - The namespace CircleCI Server is installed in.
    type: str
    required: true
  release:
    description:
      - The helm release name.
    type: str
    default: circleci-server
notes:
  - The current revision is the newest C(deployed) one, as C(helm list) shows; when none is deployed (a
    failed first install), the newest revision.
  - An unreachable cluster fails the module, with a message that says what to check. A missing release does
    not, RV(release.exists) is false then.
"""

EXAMPLES = r"""
- name: Read the installed release
  circleci.server.server_release_info:
    namespace: circleci-server
  register: installed

- name: Show it
  ansible.builtin.debug:
    msg: "{{ installed.release.chart_version }} on Kubernetes {{ installed.kubernetes_version }}"
"""

RETURN = r"""
kubernetes_version:
  description: The API server's version, normalised to MAJOR.MINOR.PATCH.
  returned: always
  type: str
  sample: 1.27.9
kubernetes_git_version:
  description: The API server's version as it reports it.
  returned: always
  type: str
  sample: v1.27.9-eks-5e0fdde
release:
  description: The helm release.
  returned: always
  type: dict
  contains:
    exists:
      description: Whether the release has any revision in the namespace.
      type: bool
    name:
      description: The release name.
      type: str
    namespace:
      description: The namespace.
      type: str
    revision:
      description: The current revision.
      type: int
    status:
      description: The revision's status, for example V(deployed) or V(failed).
      type: str
    chart_version:
      description: The chart version, which is the CircleCI Server version.
      type: str
    app_version:
      description: The chart's appVersion.
      type: str
    updated:
      description: When the revision was last deployed.
      type: str
    revisions:
      description: Every revision with its status, newest first.
      type: list
      elements: dict
  sample: {exists: true, name: circleci-server, namespace: circleci-server, revision: 3, status: deployed,
           chart_version: 4.2.7}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.k8s import (
    HAS_K8S,
    K8S_AUTH_ARGSPEC,
    K8sError,
    K8sReader,
    check_names,
    missing_library_message,
    normalise_kubernetes_version,
    release_summary,
)


def run(module, reader):
    params = module.params
    try:
        version = reader.version()
        release = release_summary(reader, params["namespace"], params["release"])
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    git_version = version.get("gitVersion") or "v%s.%s" % (version.get("major"), version.get("minor"))
    module.exit_json(changed=False, kubernetes_version=normalise_kubernetes_version(version),
                     kubernetes_git_version=git_version, release=release)


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        release=dict(type="str", default="circleci-server"),
    )
    argument_spec.update(K8S_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_K8S:
        module.fail_json(msg=missing_library_message())
    try:
        check_names(module.params, {"namespace": "namespace", "release": "release"})
        reader = K8sReader.from_params(module.params)
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    run(module, reader)


if __name__ == "__main__":
    main()
