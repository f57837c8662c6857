#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: server_version_info
short_description: Tell what the release catalog knows about a CircleCI Server version
version_added: 0.1.0
description:
  - Parses a CircleCI Server chart version and, optionally, a Kubernetes version, and reports whether
    that Kubernetes version is in the range the server release supports, whether the server version is
    the last patch of its minor, and whether it is a known-broken release such as 4.7.7.
  - The facts come from the collection's release catalog, built from CircleCI's server-admin
    documentation. CircleCI revises the supported Kubernetes ranges after release;
    O(kubernetes_overrides) replaces a minor's range when the documentation you follow says otherwise.
  - With O(target_version), it also plans the upgrade from O(server_version) (the installed version) to the
    target, as the server documentation requires. It never skips a minor, leaves each minor from its last
    patch, never lands on a known-broken release such as 4.7.7, and refuses downgrades. Every hop carries the Kubernetes
    range that both of its ends support, which the cluster must be in when that hop runs.
  - Reads nothing from a cluster and changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
options:
  server_version:
    description:
      - The CircleCI Server version, MAJOR.MINOR.PATCH as the chart version (V(4.2.7)); a leading V(v) is
        allowed and dropped (V(v4.2.7)). Pre-releases (V(4.3.9-rc1)), anything around the version and
        non-ASCII digits are refused.
      - Quote it in YAML. An unquoted V(4.3) reaches the module as a float (and V(4.10) as V(4.1)), which is
        refused.
    type: raw
    required: true
  kubernetes_version:
    description:
      - The cluster's Kubernetes version, for example V(1.27.3) or V(v1.27.16-eks-a18cd3a) (a vendor build
        suffix is allowed here). Quote it in YAML; a number is refused.
      - When omitted, only the server version is reported.
    type: raw
  kubernetes_overrides:
    description:
      - "Supported Kubernetes ranges that replace the catalog's, by server minor, for example
        V({\"4.3\": \"1.26-1.30\"}). Quote the minors: an unquoted V(4.3) key is a float and is refused."
    type: dict
    default: {}
  target_version:
    description:
      - The version to upgrade to. When given, RV(upgrade_path) is returned and a refused path (unknown
        version, known-broken target, downgrade) or a hop whose Kubernetes range excludes O(kubernetes_version)
        is a problem.
      - On GKE (a O(kubernetes_version) with C(-gke), as GKE reports it), a path that lands on 4.5 is a problem too,
        because CircleCI's 4.5 release notes say not to upgrade GKE installations to 4.5.
      - The same form as O(server_version), normalised the same way.
    type: raw
  allow_validated_skips:
    description:
      - Take the jump the 4.7 upgrade page validates, from the last patch of 4.3, 4.4, 4.5 or 4.6 straight to
        4.7, when one Kubernetes version supports both ends. Otherwise every minor is visited.
    type: bool
    default: false
  fail_on_problem:
    description:
      - Fail when the server version is known-broken, the Kubernetes version is outside the supported range,
        or (with O(target_version)) there is no valid upgrade path.
    type: bool
    default: false
notes:
  - An unknown version (a minor the catalog does not list, or a patch newer than the last it knows) fails
    with a message that says to upgrade the collection.
"""

EXAMPLES = r"""
- name: Check that the cluster runs a Kubernetes version that CircleCI Server 4.3 supports
  circleci.server.server_version_info:
    server_version: 4.3.9
    kubernetes_version: "{{ cluster_info.version.server.kubernetes.gitVersion }}"
    fail_on_problem: true

- name: Plan the upgrade from the installed 4.2.3 to 4.3.9 (through 4.2.7)
  circleci.server.server_version_info:
    server_version: 4.2.3
    target_version: 4.3.9
    kubernetes_version: 1.27.16
    fail_on_problem: true
  register: plan

- name: Read what the catalog says about the installed release (v4.2.7 is read as 4.2.7)
  circleci.server.server_version_info:
    server_version: v4.2.7
  register: current_release
"""

RETURN = r"""
server_version:
  description: The server version, normalised to MAJOR.MINOR.PATCH.
  returned: always
  type: str
  sample: 4.3.9
minor:
  description: The server minor release.
  returned: always
  type: str
  sample: "4.3"
last_patch:
  description: The last patch of that minor that the catalog knows.
  returned: always
  type: str
  sample: 4.3.9
is_last_patch:
  description: Whether O(server_version) is that last patch.
  returned: always
  type: bool
broken:
  description: Whether the version is a known-broken release that must never be installed.
  returned: always
  type: bool
kubernetes_range:
  description: The inclusive range of Kubernetes minors the server minor supports.
  returned: always
  type: dict
  sample: {"min": "1.26", "max": "1.29"}
kubernetes_version:
  description: The Kubernetes version, normalised, or null when not given.
  returned: always
  type: str
  sample: 1.27.3
kubernetes_supported:
  description: Whether the Kubernetes version is in the range, or null when not given.
  returned: always
  type: bool
notes:
  description: Release notes the catalog holds for the minor (cautions an operator must know).
  returned: always
  type: list
  elements: str
upgrade_path:
  description: The upgrade plan from O(server_version) to O(target_version); null without O(target_version).
  returned: always
  type: dict
  contains:
    current:
      description: The installed version, normalised.
      type: str
    target:
      description: The target version, normalised.
      type: str
    ok:
      description: Whether a path exists (RV(upgrade_path.refused) is empty).
      type: bool
    path:
      description: >-
        The hops in order, each with C(from), C(to), C(kind) (V(patch) or V(minor)), C(kubernetes_range)
        (C(min), C(max): the range both ends support) and C(notes). Empty when already at the target.
      type: list
      elements: dict
    versions:
      description: The version each hop lands on, in order.
      type: list
      elements: str
    refused:
      description: Why there is no path, each sentence saying what to do.
      type: list
      elements: str
    requires_tink:
      description: Whether a hop lands on 4.3 or later, so the Vault to Tink migration must be finished first.
      type: bool
  sample:
    current: 4.2.3
    target: 4.3.9
    ok: true
    versions: [4.2.7, 4.3.9]
    path:
      - {from: 4.2.3, to: 4.2.7, kind: patch, kubernetes_range: {min: "1.22", max: "1.28"}, notes: []}
      - {from: 4.2.7, to: 4.3.9, kind: minor, kubernetes_range: {min: "1.26", max: "1.28"}, notes: []}
    refused: []
    requires_tink: true
problems:
  description: Human sentences, one per problem found, each saying what to do.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.versions import (
    Catalog,
    UnknownRelease,
    VersionError,
    normalise_version,
    plan_upgrade,
    support_report,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server_version=dict(type="raw", required=True),
            kubernetes_version=dict(type="raw"),
            kubernetes_overrides=dict(type="dict", default={}),
            target_version=dict(type="raw"),
            allow_validated_skips=dict(type="bool", default=False),
            fail_on_problem=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        if params["target_version"] is not None:
            # A malformed target is an input error, not a plan problem: refused even without fail_on_problem.
            normalise_version(params["target_version"], "target_version")
        catalog = Catalog(kubernetes_overrides=params["kubernetes_overrides"])
        report = support_report(params["server_version"], params["kubernetes_version"], catalog)
    except (UnknownRelease, VersionError) as exc:
        module.fail_json(msg=str(exc))

    report["upgrade_path"] = None
    if params["target_version"] is not None:
        plan = plan_upgrade(params["server_version"], params["target_version"], catalog,
                            allow_validated_skips=params["allow_validated_skips"],
                            names=("server_version", "target_version"))
        report["upgrade_path"] = plan.as_dict()
        if plan.ok:
            # Leaving a broken or out-of-range installed release is the point of the plan: judge the hops.
            report["problems"] = []
            if params["kubernetes_version"] is not None:
                report["problems"].extend(plan.kubernetes_problems(params["kubernetes_version"]))
                report["problems"].extend(plan.platform_problems(params["kubernetes_version"]))
        else:
            report["problems"].extend(plan.refused)

    if params["fail_on_problem"] and report["problems"]:
        module.fail_json(msg=" ".join(report["problems"]), **report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
