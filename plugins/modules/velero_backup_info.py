#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: velero_backup_info
short_description: Find the newest Velero backup of the CircleCI Server namespace and tell whether it is recent and good
version_added: 0.1.0
description:
  - Lists the Velero C(Backup) objects (C(velero.io/v1)) in the Velero namespace, keeps those that cover the
    CircleCI Server namespace (C(spec.includedNamespaces) names it, is C(*) or is empty, and it is not
    excluded), and reports the newest with its phase, errors, warnings, completion time, age and
    C(chart--rev) label.
  - RV(recent_ok) is true only for a backup whose phase is C(Completed), with no errors, that completed less
    than O(max_age) ago and has not expired. Every upgrade of CircleCI Server requires such a backup.
  - When an older covering backup passes and the newest does not, the passing one is reported.
  - Reads only; changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
  - circleci.server.k8s_auth
options:
  namespace:
    description:
      - The namespace CircleCI Server is installed in, which the backup must cover.
    type: str
    required: true
  velero_namespace:
    description:
      - The namespace Velero runs in and keeps its C(Backup) objects in.
    type: str
    default: velero
  max_age:
    description:
      - The maximum age of the backup, counted from its completion, as a duration such as V(24h), V(90m),
        V(1h30m), V(2d) or a number of seconds.
    type: str
    default: 24h
  fail_on_problem:
    description:
      - Fail, with RV(problems) as the message, when there is no recent good backup.
    type: bool
    default: false
notes:
  - Ages are measured against the clock of the host the module runs on.
  - When the Velero CRD is not installed, no backup is found, and the message says how to take one.
"""

EXAMPLES = r"""
- name: Find the newest backup of the server namespace
  circleci.server.velero_backup_info:
    namespace: circleci-server
  register: backup

- name: Stop if there is no good backup of the last 12 hours
  circleci.server.velero_backup_info:
    namespace: circleci-server
    max_age: 12h
    fail_on_problem: true
"""

RETURN = r"""
recent_ok:
  description: Whether a covering backup is Completed, error-free, younger than O(max_age) and not expired.
  returned: always
  type: bool
backup:
  description: The newest covering backup that passes, else the newest covering backup, else null.
  returned: always
  type: dict
  contains:
    name:
      description: The backup's name.
      type: str
    phase:
      description: C(status.phase), for example V(Completed) or V(PartiallyFailed).
      type: str
    errors:
      description: C(status.errors).
      type: int
    warnings:
      description: C(status.warnings).
      type: int
    completion_time:
      description: C(status.completionTimestamp).
      type: str
    age:
      description: Time since completion, for example V(3h05m).
      type: str
    age_seconds:
      description: Seconds since completion.
      type: int
    expiration:
      description: C(status.expiration).
      type: str
    chart_revision:
      description: The C(chart--rev) label, for example V(circleci-server-4.2.7--3).
      type: str
    included_namespaces:
      description: C(spec.includedNamespaces).
      type: list
      elements: str
    ok:
      description: Whether this backup passes.
      type: bool
  sample:
    name: circleci-server-a1b2c3d4
    phase: Completed
    errors: 0
    warnings: 2
    completion_time: "2026-11-23T08:01:12Z"
    age: 2h58m
backups_found:
  description: How many backups cover the namespace.
  returned: always
  type: int
max_age_seconds:
  description: O(max_age) in seconds.
  returned: always
  type: int
problems:
  description: Sentences that say why there is no recent good backup and how to take one.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.k8s import (
    HAS_K8S,
    K8S_AUTH_ARGSPEC,
    K8sError,
    K8sReader,
    check_names,
    missing_library_message,
)
from ansible_collections.circleci.server.plugins.module_utils.velero import (
    DurationError,
    backup_report,
    parse_duration,
    read_backups,
)


def run(module, reader, now=None):
    params = module.params
    try:
        backups = read_backups(reader, params["velero_namespace"])
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    report = backup_report(backups, params["namespace"], now=now, max_age=params["max_age"],
                           velero_namespace=params["velero_namespace"])
    if params["fail_on_problem"] and not report["recent_ok"]:
        module.fail_json(msg=" ".join(report["problems"]), changed=False, **report)
    module.exit_json(changed=False, **report)


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        velero_namespace=dict(type="str", default="velero"),
        max_age=dict(type="str", default="24h"),
        fail_on_problem=dict(type="bool", default=False),
    )
    argument_spec.update(K8S_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        parse_duration(module.params["max_age"])
    except DurationError as exc:
        module.fail_json(msg="max_age: %s" % exc)
    if not HAS_K8S:
        module.fail_json(msg=missing_library_message())
    try:
        check_names(module.params, {"namespace": "namespace", "velero_namespace": "namespace"})
        reader = K8sReader.from_params(module.params)
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    run(module, reader)


if __name__ == "__main__":
    main()
