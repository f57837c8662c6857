#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migrate219_compare
short_description: Compare what the 2.19 export counted with what 3.x holds after the import
version_added: 0.1.0
description:
  - Parses what the 2.19 side printed at export (O(source_output)) and what the 3.x side prints after the import
    (O(target_output)), and compares them database by database.
  - For V(postgresql), both are the output of the role file C(pg_table_checksums.sh) (per database, each table's
    row count and an md5 of its rows); for V(mongodb), the JSON the mongo shell printed with C(mongo_counts.js)
    (document counts per collection).
  - A database that only 3.x has is not a difference. Reads only; changes nothing.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
options:
  datastore:
    description: Which datastore the counts are of.
    type: str
    required: true
    choices: [postgresql, mongodb]
  source_output:
    description: What the 2.19 side printed at export (recorded in the run's manifest).
    type: str
    required: true
  target_output:
    description: What the 3.x side prints now.
    type: str
    required: true
  fail_on_difference:
    description: Fail, listing the differences, when the two sides differ.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Compare PostgreSQL row counts and checksums
  circleci.server.migrate219_compare:
    datastore: postgresql
    source_output: "{{ migrate_plan.archives.postgresql.counts }}"
    target_output: "{{ migrate_psql.stdout }}"
"""

RETURN = r"""
equal:
  description: Whether every database and table (or collection) of the source has the same value on 3.x.
  returned: always
  type: bool
source:
  description: What 2.19 held, parsed, by database then table (rows and md5) or collection (count).
  returned: always
  type: dict
target:
  description: What 3.x holds, parsed, in the shape of RV(source).
  returned: always
  type: dict
differences:
  description: One line per difference.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.migrate219 import (
    MigrationError, compare_counts, parse_mongo_counts, parse_table_checksums)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            datastore=dict(type="str", required=True, choices=["postgresql", "mongodb"]),
            source_output=dict(type="str", required=True),
            target_output=dict(type="str", required=True),
            fail_on_difference=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    parse = parse_table_checksums if params["datastore"] == "postgresql" else parse_mongo_counts
    parsed = {}
    for side in ("source", "target"):
        try:
            parsed[side] = parse(params[side + "_output"])
        except (MigrationError, ValueError) as exc:
            module.fail_json(msg="cannot read what the %s side printed: %s" % ("2.19" if side == "source" else "3.x", exc))
    differences = compare_counts(parsed["source"], parsed["target"], params["datastore"])
    result = dict(changed=False, equal=not differences, source=parsed["source"], target=parsed["target"],
                  differences=differences)
    if differences and params["fail_on_difference"]:
        module.fail_json(msg="3.x differs from the 2.19 export: %s" % "; ".join(differences[:20]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
