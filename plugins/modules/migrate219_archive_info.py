#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate219_archive_info
short_description: Check the 2.19 export archives of this migration run and say which datastores to import into 3.x
version_added: 0.1.0
description:
  - Reads the controller's copy of one run of the export of C(playbooks/migrate-2.19-to-3.yml) (O(run_dir)). Its
    C(manifest.json) must name this run (O(run_id)), and each archive of a datastore that is not skipped must be
    there with the sha256 the services box recorded for it. An archive of another run, or a damaged one, is never
    imported (migrate.sh imported whatever C(circleci_export) was left).
  - Returns the datastores to import (RV(to_import)) and those already imported with the same checksum, as recorded
    in the cluster (O(imported)), so that a re-run after a failure does not restore a datastore twice.
  - Reads only; changes nothing. Exists because no module checks a set of archives against a manifest of one run.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
options:
  run_dir:
    description: The controller directory of this run's export (C(manifest.json) and the archives).
    type: path
    required: true
  run_id:
    description: This run's id (C(YYYYMMDDTHHMMSSZ)), as recorded in the cluster's migration state.
    type: str
    required: true
  datastores:
    description: The datastores not skipped, among V(postgresql), V(mongodb), V(vault) and V(keys).
    type: list
    elements: str
    required: true
  imported:
    description: The datastores already imported by this run and the sha256 of the archive each was imported from.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check this run's archives and plan the import
  circleci.server.migrate219_archive_info:
    run_dir: /home/ops/.circleci-server/migrate-2.19/20260105T101500Z
    run_id: 20260105T101500Z
    datastores: [postgresql, mongodb, vault, keys]
    imported:
      postgresql: 0d5c3b1e6f0e4f3a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a
  register: migrate_plan
"""

RETURN = r"""
archives:
  description: Each checked archive by datastore, with its C(path), C(sha256), C(size) and the C(counts) recorded at export.
  returned: success
  type: dict
to_import:
  description: The datastores (among V(postgresql), V(mongodb), V(vault)) to restore, in order.
  returned: success
  type: list
  elements: str
already_imported:
  description: The datastores this run already restored from the same archive.
  returned: success
  type: list
  elements: str
skipped:
  description: The datastores the operator skipped.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.migrate219 import MigrationError, plan_import


def main():
    module = AnsibleModule(
        argument_spec=dict(
            run_dir=dict(type="path", required=True),
            run_id=dict(type="str", required=True),
            datastores=dict(type="list", elements="str", required=True),
            imported=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        plan = plan_import(params["run_dir"], params["run_id"], params["datastores"], params["imported"])
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **plan)


if __name__ == "__main__":
    main()
