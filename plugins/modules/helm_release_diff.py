#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_release_diff
short_description: Show what a Helm upgrade of a release will change, without the helm-diff plugin
version_added: 0.1.0
description:
  - Renders the target chart with the values the upgrade will use (C(helm template)) and compares it with the
    manifests of the deployed release (C(helm get manifest)), resource by resource.
  - Reports each resource as added, removed or changed, and for a changed one the fields that change.
    With C(--diff) the same comparison is shown as text.
  - Secret C(data) and C(stringData) values are masked; only whether they change is reported.
  - Written because the helm-diff plugin is often absent (it cannot be installed on many AWX execution
    environments) and because C(kubernetes.core.helm) without it decides "changed" from the chart version
    and values only, so template changes are invisible to it.
  - Reads only; it runs in check mode too.
author:
  - circleci.server maintainers (@circleci-server-ansible)
attributes:
  check_mode:
    support: full
    description: The module never changes anything; it runs the same in check mode.
  diff_mode:
    support: full
    description: With C(--diff) the resource changes are shown as text.
extends_documentation_fragment:
  - circleci.server.request_timeout
options:
  release_name:
    description: The Helm release.
    type: str
    default: circleci-server
  release_namespace:
    description: The namespace of the release.
    type: str
    required: true
  chart_ref:
    description:
      - The target chart, as C(helm template) takes it, for example V(oci://cciserver.azurecr.io/circleci-server)
        or a local chart directory or archive.
      - An OCI registry must already be logged in to (C(helm registry login --password-stdin)).
    type: str
    required: true
  chart_version:
    description:
      - The target chart version, MAJOR.MINOR.PATCH (a leading V(v) is dropped). Omit it for a local chart.
      - Quote it in YAML; a number (an unquoted V(4.3)) and pre-releases such as V(4.3.9-rc1) are refused.
    type: raw
  values_files:
    description: Values files, in order, exactly as the upgrade will use them (on the managed host).
    type: list
    elements: path
    default: []
  kube_version:
    description:
      - The cluster's Kubernetes version, passed to C(helm template --kube-version) so that charts that test
        C(.Capabilities.KubeVersion) render as they will on the cluster.
      - For example V(1.28.5) or V(v1.28.5-eks-5e0fdde) (passed on as V(1.28.5)). Quote it in YAML.
    type: raw
  kubeconfig:
    description: Path to the kubeconfig helm uses. The C(KUBECONFIG) environment applies when omitted.
    type: path
  context:
    description: The kubeconfig context helm uses.
    type: str
  binary_path:
    description: The helm binary. The first C(helm) on C(PATH) when omitted.
    type: path
notes:
  - Hooks are compared neither side (C(helm get manifest) omits them; the rendering uses C(--no-hooks)).
  - Fields that the API server adds (defaults, status) are not in either manifest and are not compared.
"""

EXAMPLES = r"""
- name: Show what the upgrade to 4.3.9 will change
  circleci.server.helm_release_diff:
    release_namespace: circleci-server
    chart_ref: oci://cciserver.azurecr.io/circleci-server
    chart_version: 4.3.9
    values_files:
      - /etc/circleci/values.yaml
    kube_version: "{{ cluster_version }}"
  register: release_diff

- name: Stop if the upgrade would remove the proxy load balancer
  ansible.builtin.assert:
    that:
      - release_diff.resources | selectattr('name', 'equalto', 'circleci-proxy')
        | selectattr('action', 'equalto', 'removed') | list | length == 0
    fail_msg: The upgrade would remove the circleci-proxy Service (its DNS name would change).
"""

RETURN = r"""
summary:
  description: How many resources are added, removed, changed and unchanged.
  returned: success
  type: dict
  sample: {"added": 2, "removed": 1, "changed": 5, "unchanged": 40}
resources:
  description: Every resource that differs, sorted by kind and name.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: The resource kind.
      type: str
    api_group:
      description: The API group, empty for the core group.
      type: str
    namespace:
      description: The namespace.
      type: str
    name:
      description: The resource name.
      type: str
    action:
      description: One of V(added), V(removed), V(changed).
      type: str
    changes:
      description: For a changed resource, each field that changes, with C(path), C(before) and C(after); Secret values masked.
      type: list
      elements: dict
  sample: [{"kind": "Deployment", "api_group": "apps", "namespace": "circleci-server", "name": "frontend",
            "action": "changed", "changes": [{"path": "spec.template.spec.containers[frontend].image",
            "before": "circleci/frontend:4.2.7", "after": "circleci/frontend:4.3.9"}]}]
commands:
  description: The helm commands that were run (they carry no secret).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils import process
from ansible_collections.circleci.server.plugins.module_utils.files import InputError, load_yaml, read_text
from ansible_collections.circleci.server.plugins.module_utils.k8s import K8sError, check_names
from ansible_collections.circleci.server.plugins.module_utils import release_diff as release_diff_utils
from ansible_collections.circleci.server.plugins.module_utils.network import (
    REQUEST_TIMEOUT_SPEC,
    TimeoutOptionError,
    check_timeout,
)
from ansible_collections.circleci.server.plugins.module_utils.release_diff import (
    ManifestError,
    diff_releases,
    render_diff_text,
)
from ansible_collections.circleci.server.plugins.module_utils.versions import KUBERNETES, VersionError, normalise_version


def _api_servers(kubeconfig):
    """The API server URLs a kubeconfig names, for a message (best effort)."""
    # The client's own default when neither the option nor KUBECONFIG names one (kubeconfig is type=path).
    default = os.path.join(os.environ.get("HOME", "~"), ".kube", "config")
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or default
    try:
        document = load_yaml(read_text(path, "kubeconfig"), "kubeconfig") or {}
        servers = [c["cluster"]["server"] for c in document.get("clusters") or [] if c.get("cluster", {}).get("server")]
    except (InputError, AttributeError, KeyError, TypeError):
        servers = []
    return "%s in %s" % (", ".join(servers) or "unknown", path)


def _helm_env():
    """The module's environment, with a C locale for stable messages."""
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    return env


def _connection_args(params):
    args = []
    if params["kubeconfig"]:
        args += ["--kubeconfig", params["kubeconfig"]]
    if params["context"]:
        args += ["--kube-context", params["context"]]
    return args


def main():
    module = AnsibleModule(
        argument_spec=dict(
            release_name=dict(type="str", default="circleci-server"),
            release_namespace=dict(type="str", required=True),
            chart_ref=dict(type="str", required=True),
            chart_version=dict(type="raw"),
            values_files=dict(type="list", elements="path", default=[]),
            kube_version=dict(type="raw"),
            kubeconfig=dict(type="path"),
            context=dict(type="str"),
            binary_path=dict(type="path"),
            **REQUEST_TIMEOUT_SPEC
        ),
        supports_check_mode=True,
    )
    if release_diff_utils.yaml is None:
        module.fail_json(msg="helm_release_diff needs the PyYAML Python library on the host that runs it: pip install pyyaml")
    params = module.params
    try:
        if params["chart_version"] is not None:
            params["chart_version"] = normalise_version(params["chart_version"], "chart_version")
        if params["kube_version"] is not None:
            params["kube_version"] = normalise_version(params["kube_version"], "kube_version", KUBERNETES)
        timeout = check_timeout(params["request_timeout"])
        check_names(params, {"release_namespace": "namespace", "release_name": "release"})
    except (VersionError, TimeoutOptionError, K8sError) as exc:
        module.fail_json(msg=str(exc))
    helm = params["binary_path"] or module.get_bin_path("helm", required=True)
    namespace = params["release_namespace"]
    commands = []

    def run(command, what):
        try:
            return process.run(command, timeout, env=_helm_env())
        except process.CommandTimeout:
            module.fail_json(msg="%s: helm did not finish within request_timeout (%g s); the Kubernetes API server (%s) "
                                 "or the chart registry of %s is not answering. Check that they are reachable from "
                                 "this host; raise request_timeout if they are only slow." % (
                                     what, timeout, _api_servers(params["kubeconfig"]), params["chart_ref"]),
                             commands=commands)
        except OSError as exc:
            module.fail_json(msg="%s: cannot run %s: %s. Install helm 3 or set binary_path." % (
                what, helm, exc.strerror), commands=commands)

    def helm_run(args, what):
        command = [helm] + args + _connection_args(params)
        commands.append(" ".join(command))
        rc, out, err = run(command, what)
        if rc != 0:
            module.fail_json(msg="%s failed (helm exited %d): %s" % (what, rc, err.strip() or out.strip()),
                             commands=commands)
        return out

    current = helm_run(["get", "manifest", params["release_name"], "--namespace", namespace],
                       "Reading the deployed manifests of release %s in namespace %s" % (params["release_name"], namespace))
    template = ["template", params["release_name"], params["chart_ref"], "--namespace", namespace, "--no-hooks", "--is-upgrade"]
    if params["chart_version"]:
        template += ["--version", params["chart_version"]]
    if params["kube_version"]:
        template += ["--kube-version", params["kube_version"]]
    for path in params["values_files"]:
        template += ["--values", path]
    # helm template takes no cluster flags; _connection_args adds them only for the commands that use the cluster.
    command = [helm] + template
    commands.append(" ".join(command))
    rc, target, err = run(command, "Rendering %s %s" % (params["chart_ref"], params["chart_version"] or ""))
    if rc != 0:
        module.fail_json(msg="Rendering %s %s with the given values failed: %s. Fix the values (a key the target "
                             "chart's schema rejects is named above) before upgrading." % (
                                 params["chart_ref"], params["chart_version"] or "", err.strip()),
                         commands=commands)
    try:
        result = diff_releases(current, target, namespace)
    except ManifestError as exc:
        module.fail_json(msg=str(exc), commands=commands)

    output = dict(changed=False, summary=result["summary"], resources=result["resources"], commands=commands)
    if module._diff:
        output["diff"] = {"prepared": render_diff_text(result)}
    module.exit_json(**output)


if __name__ == "__main__":
    main()
