#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tink_migration_status
short_description: Tell whether a CircleCI Server installation finished the Vault to Tink migration
version_added: 0.1.0
description:
  - Reads the release's user values (from helm's release Secret, no helm binary needed), the C(tink) Secret
    and the internal Vault workloads of a CircleCI Server namespace, and reports whether the migration of
    contexts' secrets from Vault to Tink is finished.
  - "The signals, from the server documentation and the C(vault-to-tink) scripts: C(tink.enabled) is true in
    the release values; a keyset is present (C(tink.keyset) in the values, or Secret C(tink) with key
    C(keyset)), decodable and valid JSON; C(vault.internal) is false; no internal Vault runs (no StatefulSet
    C(vault), no pod labelled C(app=vault)); optionally, the import run log ends with C(0: Error while
    importing). A leftover PVC C(data-vault-0) is reported but does not block."
  - CircleCI Server 4.3 requires the migration to be finished on 4.2, and every later upgrade requires it
    before the pre-upgrade backup.
  - The keyset's content is never returned or logged; only whether it was found and parses.
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
  import_log:
    description:
      - Path, on the host the module runs on, to the C(run-log-import-contexts-<timestamp>.log) that
        C(import-contexts.sh) wrote.
      - "When given, its summary line C(0: Error while importing) is required."
    type: path
  fail_on_blocking:
    description:
      - Fail, listing the O(ignore:blocking) sentences, when the migration is not finished.
    type: bool
    default: false
notes:
  - There is no server-side "migration complete" flag; these signals are what can be observed. Verify
    with a pipeline that uses contexts, as the vault-to-tink procedure says.
"""

EXAMPLES = r"""
- name: Read the Vault to Tink migration status
  circleci.server.tink_migration_status:
    namespace: circleci-server
    kubeconfig: ~/.kube/config
    context: prod
  register: tink

- name: Stop if the migration is not finished
  ansible.builtin.assert:
    that: tink.migrated
    fail_msg: "{{ tink.blocking | join(' ') }}"

- name: Require the import log too
  circleci.server.tink_migration_status:
    namespace: circleci-server
    import_log: /root/vault-to-tink/run-log-import-contexts-20260301-101500.log
    fail_on_blocking: true
"""

RETURN = r"""
migrated:
  description: Whether every blocking signal is satisfied.
  returned: always
  type: bool
signals:
  description: One entry per signal, in a fixed order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: >-
        V(tink_enabled), V(keyset_present), V(vault_not_internal), V(no_vault_workload), V(vault_pvc_absent),
        V(import_log) (only with O(import_log)).
      type: str
    ok:
      description: Whether the signal is as expected after the migration.
      type: bool
    blocking:
      description: Whether a failed signal means the migration is not finished (false only for the PVC).
      type: bool
    evidence:
      description: What was observed, never the keyset itself.
      type: str
  sample:
    - {name: tink_enabled, ok: true, blocking: true, evidence: tink.enabled is true in the release values.}
blocking:
  description: One sentence per failed blocking signal, each saying what to do.
  returned: always
  type: list
  elements: str
release:
  description: The release that was read.
  returned: always
  type: dict
  sample: {name: circleci-server, namespace: circleci-server, revision: 7, chart_version: 4.2.7}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.files import InputError, read_text

from ansible_collections.circleci.server.plugins.module_utils.k8s import (
    HAS_K8S,
    K8S_AUTH_ARGSPEC,
    K8sError,
    K8sReader,
    check_names,
    missing_library_message,
)
from ansible_collections.circleci.server.plugins.module_utils.tink import evaluate_tink, read_tink_facts


# import-contexts.sh writes a few lines per context: tens of thousands of contexts stay well under this.
IMPORT_LOG_MAX_BYTES = 32 * 1024 * 1024


def run(module, reader):
    params = module.params
    import_log_text = None
    if params["import_log"]:
        try:
            import_log_text = read_text(params["import_log"], "import_log", max_bytes=IMPORT_LOG_MAX_BYTES)
        except InputError as exc:
            module.fail_json(msg="%s It must be the run-log-import-contexts-<timestamp>.log that import-contexts.sh "
                                 "wrote, on the host this module runs on." % exc)
    try:
        facts = read_tink_facts(reader, params["namespace"], params["release"])
    except K8sError as exc:
        module.fail_json(msg=str(exc))
    result = evaluate_tink(facts, import_log_text)
    result["release"] = {"name": params["release"], "namespace": params["namespace"],
                         "revision": facts["revision"], "chart_version": facts["chart_version"]}
    if params["fail_on_blocking"] and result["blocking"]:
        module.fail_json(msg=" ".join(result["blocking"]), changed=False, **result)
    module.exit_json(changed=False, **result)


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        release=dict(type="str", default="circleci-server"),
        import_log=dict(type="path"),
        fail_on_blocking=dict(type="bool", default=False),
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
