#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_hops_info
short_description: What each hop of a CircleCI Server 4.x upgrade needs, from the collection's hop table
version_added: 0.1.0
description:
  - Takes the upgrade path that M(circleci.server.server_version_info) plans (one C(helm upgrade) per hop) and
    adds, for each hop, what the collection's hop table says it needs besides the values hop, the release diff
    and C(helm upgrade) - the cloud and IAM roles to run before the release diff (4.3 - machine-provisioner's
    identity, vm-service leftovers), the post-checks after the upgrade, the MongoDB version it needs (4.9 - 4.4,
    4.10 - 7.0), the server-terraform release the Nomad clients must be on first (4.7 onwards), and what is left
    to do by hand (4.10 - the workflow retention setting).
  - A hop that needs something the cluster does not have yet is blocked, with the reason and the exact
    procedure; the run goes as far as the hop before it. With O(upgrade_mongodb), a MongoDB too old is upgraded by
    the run instead (the chain is returned per hop); with O(upgrade_postgresql), so is a PostgreSQL older than a
    hop recommends.
  - With O(mongodb_target), returns the MongoDB upgrade steps from O(mongodb_version) (and O(mongodb_fcv)) to it.
  - Reads nothing and changes nothing; it exists because the hop table is data in the collection's module_utils
    (one row per release), which a playbook cannot read otherwise.
author:
  - circleci.server maintainers (@circleci-server-ansible)
attributes:
  check_mode:
    support: full
    description: Computes the same answer in check mode.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
options:
  path:
    description:
      - The hops of the upgrade, as M(circleci.server.server_version_info) returns them in C(upgrade_path.path)
        (each with C(from), C(to), C(kind), C(kubernetes_range), C(notes)). Empty - nothing to plan.
    type: list
    elements: dict
    default: []
  current_version:
    description:
      - The installed server version; RV(landed_post_roles) then lists the post-checks of the hop that lands on its
        minor (a run stopped after that hop's C(helm upgrade) finishes them first).
    type: str
    default: ""
  namespace:
    description: The release's namespace, for the commands of the procedures.
    type: str
    default: circleci-server
  mongodb_version:
    description:
      - The version of the internal MongoDB (an image tag such as V(3.6.22-debian-9-r38) or V(4.4.15)). Empty - not
        known, and a hop that needs a MongoDB version is blocked.
    type: str
    default: ""
  mongodb_fcv:
    description: The featureCompatibilityVersion of the MongoDB data, when known (a run stopped mid-chain resumes).
    type: str
    default: ""
  postgresql_version:
    description: The version of the internal PostgreSQL (an image tag), for the 4.10 recommendation.
    type: str
    default: ""
  nomad_terraform_version:
    description:
      - The CircleCI-Public/server-terraform release the Nomad clients were last applied with, for example V(4.8.0).
        Empty - a hop that needs a newer module first is blocked.
    type: str
    default: ""
  upgrade_mongodb:
    description: Upgrade a MongoDB too old for a hop in the run (the server-scripts chain) instead of stopping.
    type: bool
    default: false
  upgrade_postgresql:
    description:
      - Upgrade a PostgreSQL older than a hop recommends (12 before 4.10) in the run - the hop's C(postgresql) step
        (dump, restore on the new major, row counts compared) - instead of a warning.
    type: bool
    default: false
  mongodb_target:
    description: Return RV(mongodb_steps), the MongoDB upgrade steps from O(mongodb_version) to this version.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Add the hop table's needs to the planned path
  circleci.server.upgrade_hops_info:
    path: "{{ preflight_upgrade_path.path }}"
    mongodb_version: 3.6.22-debian-9-r38
    nomad_terraform_version: 4.10.0
  register: hops

- name: The MongoDB steps from 4.4 to 7.0
  circleci.server.upgrade_hops_info:
    mongodb_version: 4.4.15-debian-10-r8
    mongodb_fcv: "4.4"
    mongodb_target: "7.0"
  register: mongodb_plan
"""

RETURN = r"""
newest_version:
  description: The newest release of the collection's catalog (what upgrade.yml targets by default).
  returned: always
  type: str
  sample: 4.10.0
hops:
  description: >-
    Each hop of O(path), in order, with C(index), C(from), C(to), C(kind), C(kubernetes_range), C(notes),
    C(cloud_roles), C(post_roles), C(check_roles) (role names of this collection; the check roles' read-only
    C(check.yml) runs with the whole path's checks, before the first change), C(mongodb) (null, or C(min), C(current),
    C(upgrade) and C(steps)), C(postgresql) (null, or C(recommended), C(current), C(upgrade) and C(tag), when
    O(upgrade_postgresql) upgrades it before the hop), C(terraform_module), C(manual_after) (C(id), C(title), C(detail)), C(blocked) (the
    reasons the hop cannot start, each with its procedure) and C(source).
  returned: always
  type: list
  elements: dict
first_blocked:
  description: The index in RV(hops) of the first blocked hop; null when none is.
  returned: always
  type: int
versions:
  description: The version each hop lands on, in order.
  returned: always
  type: list
  elements: str
warnings_found:
  description: Recommendations that do not stop the run (PostgreSQL 14 for 4.10).
  returned: always
  type: list
  elements: str
landed_post_roles:
  description: The post-check roles of the hop that lands on the minor of O(current_version) (empty without one).
  returned: always
  type: list
  elements: str
landed_check_roles:
  description: The roles of RV(landed_post_roles) whose read-only C(check.yml) runs before the first change.
  returned: always
  type: list
  elements: str
mongodb_steps:
  description: >-
    With O(mongodb_target), the steps in order, each with C(version), C(tag), C(fcv), C(shell) (V(mongo) or
    V(mongosh)), C(confirm) (7.0 needs C(confirm: true)) and C(set_image) (false when only the FCV lags).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.hops import HopsError, hooks_for, mongodb_steps, plan_hops
from ansible_collections.circleci.server.plugins.module_utils.versions import Catalog, Version, VersionError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="list", elements="dict", default=[]),
            current_version=dict(type="str", default=""),
            namespace=dict(type="str", default="circleci-server"),
            mongodb_version=dict(type="str", default=""),
            mongodb_fcv=dict(type="str", default=""),
            postgresql_version=dict(type="str", default=""),
            nomad_terraform_version=dict(type="str", default=""),
            upgrade_mongodb=dict(type="bool", default=False),
            upgrade_postgresql=dict(type="bool", default=False),
            mongodb_target=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for index, hop in enumerate(params["path"]):
        missing = [key for key in ("from", "to") if not hop.get(key)]
        if missing:
            module.fail_json(msg="path[%d] has no %s: pass server_version_info's upgrade_path.path as it is." % (
                index, " or ".join(missing)))
    try:
        plan = plan_hops(params["path"], namespace=params["namespace"], mongodb_version=params["mongodb_version"],
                         mongodb_fcv=params["mongodb_fcv"], postgresql_version=params["postgresql_version"],
                         terraform_version=params["nomad_terraform_version"], upgrade_mongodb=params["upgrade_mongodb"],
                         upgrade_postgresql=params["upgrade_postgresql"])
        steps = mongodb_steps(params["mongodb_version"], params["mongodb_fcv"], params["mongodb_target"]) \
            if params["mongodb_target"] else []
    except (HopsError, VersionError) as exc:
        module.fail_json(msg=str(exc))
    newest = str(Catalog().minors[-1].last_patch)
    landed, landed_checks = [], []
    if params["current_version"]:
        try:
            hooks = hooks_for(Version.parse(params["current_version"]).minor_key)
        except VersionError as exc:
            module.fail_json(msg="current_version: %s" % exc)
        landed = list(hooks.post_roles)
        landed_checks = [role for role in hooks.check_roles if role in hooks.post_roles]
    module.exit_json(changed=False, newest_version=newest, hops=plan["hops"], first_blocked=plan["first_blocked"],
                     versions=plan["versions"], warnings_found=plan["warnings"], mongodb_steps=steps,
                     landed_post_roles=landed, landed_check_roles=landed_checks)


if __name__ == "__main__":
    main()
