#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_values_migrate
short_description: Carry a CircleCI Server values file from one 4.x release to a later one
version_added: 0.1.0
description:
  - Applies, in order, the values migrations of every minor release between O(from_version) and
    O(to_version) (4.0 to 4.10) to a Helm values file or to a values dictionary, and reports every
    change, every key it only flags, and the manual actions that values alone cannot do (IAM and trust
    policies, security groups, Terraform modules, settings).
  - "For example 4.2 to 4.3 renames C(vm_service) to C(machine_provisioner) (all its settings kept), turns
    C(providers.ec2.tags) from a list of alternating keys and values into a mapping, and C(providers.gcp.zone)
    into a C(zones) list; 4.6 to 4.7 renames C(machine_agent_base_url) and reshapes C(global.imagePullSecrets);
    4.7 to 4.8 renames C(config_path) to C(custom_config); 4.8 to 4.9 renames C(global.tracing) to C(global.otel)."
  - A file is rewritten with its comments, key order, quoting and indentation kept (ruamel.yaml round trip),
    atomically, with mode C(0600), so only the changed lines differ. A file already in the target shape is not
    written (RV(ignore:changed) is false).
  - Nothing is written when the input is invalid (not YAML, not a mapping, an odd-length tags list, tags that
    are not scalars, C(zone) and C(zones) that disagree, the old and the new name of a block both set with
    different content), when a version is unknown, or for a downgrade.
  - In results and diffs, every value under a secret-looking key (password, secret, token, key, keyset, license,
    certificate, privateKey, erlangCookie, accessKey...) is replaced by V(********).
author:
  - circleci.server maintainers (@circleci-server-ansible)
requirements:
  - ruamel.yaml (on the host that runs the module)
attributes:
  check_mode:
    support: full
    description: Computes the migration, the changes and the diff, and writes nothing.
  diff_mode:
    support: full
    description: Shows the values before and after, with secret values masked.
options:
  src:
    description:
      - Path of the values file to migrate, on the host that runs the module.
      - Mutually exclusive with O(values).
    type: path
  values:
    description:
      - The values to migrate, as a dictionary, instead of O(src).
      - The dictionary is part of the task's arguments; prefer O(src) for values that hold secrets.
    type: dict
  dest:
    description:
      - Where to write the migrated values. Defaults to O(src) (the file is migrated in place).
      - With O(values) and no O(dest), nothing is written; the migrated values are only returned.
    type: path
  from_version:
    description:
      - The CircleCI Server version the values are written for, for example V(4.2.7) (or V(v4.2.7)).
      - Quote it in YAML. An unquoted V(4.3) is a float and is refused, as are pre-releases such as V(4.3.9-rc1).
    type: raw
    required: true
  to_version:
    description:
      - The CircleCI Server version to migrate the values to, for example V(4.3.9). It must not be older than
        O(from_version), nor a known-broken release such as V(4.7.7). The same form as O(from_version).
    type: raw
    required: true
  backup:
    description:
      - Before rewriting O(dest), keep a copy of it beside it (mode C(0600)), named with a timestamp.
    type: bool
    default: false
  set_values:
    description:
      - Dotted keys to set after the migration (a key such as V(postgresql.image.tag) and its value) - what a run
        changed outside the values (a data store it upgraded) and the values must say from now on, so that
        the next C(helm upgrade) does not undo it. Missing mappings are created; each key set is a change in
        RV(changes) (hop V(set)). A key that already holds the value is left alone.
    type: dict
    default: {}
  return_values:
    description:
      - How to return the migrated values in RV(values).
      - V(masked) replaces secret values by V(********); V(none) returns no values.
      - V(unmasked) returns them as they are. The task must then set C(no_log) (the module fails otherwise), so that
        Ansible censors the result in its output; register it to use the values.
    type: str
    choices: [masked, unmasked, none]
    default: masked
notes:
  - A hop whose release changes no value key (4.3 to 4.4, 4.5 to 4.6) is applied as a no-op, so any forward pair of
    known versions has a chain.
  - Keys that a release stops reading (for example C(vm_scaler.prescaled) in 4.3, C(telegraf) in 4.10) are reported in
    RV(changes) with action V(warning) and left in place; they never make the task changed.
  - A file whose formatting ruamel.yaml cannot reproduce exactly (rare, for example mixed indentation) is written
    with that formatting normalised; a warning says so.
seealso:
  - name: CircleCI Server upgrade guide
    description: The per-release upgrade steps that this module automates for the values file.
    link: https://circleci.com/docs/server-admin/server-4.3/installation/upgrade-server/
"""

EXAMPLES = r"""
- name: Migrate the values file from 4.2.7 to 4.3.9, keeping a backup
  circleci.server.helm_values_migrate:
    src: /srv/circleci/values.yaml
    from_version: 4.2.7
    to_version: 4.3.9
    backup: true
  register: values_migration

- name: Show what must still be done by hand
  ansible.builtin.debug:
    msg: "{{ item.title }}: {{ item.detail }}"
  loop: "{{ values_migration.manual_actions }}"
  loop_control:
    label: "{{ item.id }}"

- name: Preview a migration to a new file without touching the original
  circleci.server.helm_values_migrate:
    src: /srv/circleci/values.yaml
    dest: /srv/circleci/values-4.10.yaml
    from_version: 4.2.7
    to_version: 4.10.0
  check_mode: true
  diff: true

- name: Migrate to 4.10.0 and pin the PostgreSQL 14 image the run moved the data to
  circleci.server.helm_values_migrate:
    src: /srv/circleci/values.yaml
    from_version: 4.9.5
    to_version: 4.10.0
    set_values:
      postgresql.image.tag: 14.22.4094-4922444
      postgresql.postgresqlDataDir: /bitnami/postgresql/data-14

- name: Migrate values held in a variable
  circleci.server.helm_values_migrate:
    values: "{{ server_values }}"
    from_version: 4.6.6
    to_version: 4.7.15
    return_values: unmasked
  no_log: true
  register: migrated
"""

RETURN = r"""
changes:
  description:
    - What the migration did or flagged, in order. V(renamed) gives the old and new paths in C(before) and C(after);
      V(converted), V(removed) and V(added) give the values (masked); V(warning) flags a key that is left in place.
  returned: always
  type: list
  elements: dict
  contains:
    hop:
      description: The minor hop, for example V(4.2->4.3).
      type: str
    path:
      description: The dotted path of the key.
      type: str
    action:
      description: One of V(renamed), V(converted), V(removed), V(added), V(warning).
      type: str
    before:
      description: The old path (renamed) or value (masked).
      type: raw
    after:
      description: The new path (renamed) or value (masked).
      type: raw
    reason:
      description: Why, with the release document that requires it.
      type: str
  sample:
    - hop: 4.2->4.3
      path: vm_service
      action: renamed
      before: vm_service
      after: machine_provisioner
      reason: "Server 4.3 upgrade guide, step 3: rename the vm_service block to machine_provisioner (all its settings kept)."
manual_actions:
  description: What values alone cannot do, per hop, with the exact content (policy JSON, command) when there is one.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: A stable identifier, for example V(4.3-trust-policy).
      type: str
    hop:
      description: The minor hop.
      type: str
    title:
      description: What to do, in one line.
      type: str
    detail:
      description: Why and how.
      type: str
    content:
      description: The exact policy, command or configuration, or null.
      type: raw
    applies_to:
      description: V(aws), V(gcp) or V(all).
      type: str
    source:
      description: The documents the action comes from.
      type: str
migration_warnings:
  description: The warnings of the migration as plain sentences (they are also emitted as Ansible warnings).
  returned: always
  type: list
  elements: str
hops:
  description: The minor hops applied, in order.
  returned: always
  type: list
  elements: str
  sample: ["4.2->4.3"]
dest:
  description: The file written (or that would be written), or null when only values were returned.
  returned: always
  type: str
  sample: /srv/circleci/values.yaml
backup_file:
  description: The backup of O(dest) made before it was rewritten.
  returned: changed and O(backup=true) and O(dest) existed
  type: str
  sample: /srv/circleci/values.yaml.12345.2026-11-23@10:52:01~
values:
  description: The migrated values (masked unless O(return_values=unmasked)), or null with O(return_values=none).
  returned: always
  type: dict
"""

import os
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.circleci.server.plugins.module_utils.files import (
    InputError,
    check_dest,
    os_error_message,
    read_text,
)
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile
from ansible_collections.circleci.server.plugins.module_utils.values.masking import mask_tree
from ansible_collections.circleci.server.plugins.module_utils.values.migrations import MigrationError, migrate, set_values
from ansible_collections.circleci.server.plugins.module_utils.versions import UnknownRelease, VersionError, normalise_version

FILE_MODE = 0o600


def _read(module, path, what):
    try:
        return read_text(path, what)
    except InputError as exc:
        module.fail_json(msg=str(exc))


def _write(module, path, text):
    """Write ``text`` to ``path`` atomically, mode 0600 from the first byte, owner kept."""
    directory = os.path.dirname(os.path.abspath(path))
    stat = os.stat(path) if os.path.exists(path) else None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    except OSError as exc:
        module.fail_json(msg=os_error_message(exc, "writing", path))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        if stat is not None and os.geteuid() == 0:
            os.chown(tmp, stat.st_uid, stat.st_gid)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        module.fail_json(msg=os_error_message(exc, "writing", path))


def _formatting_drift(text, tree, layout):
    """How many lines ruamel.yaml would reformat in a file it did not otherwise change."""
    again = yamlfile.dump(tree, layout).splitlines()
    original = text.splitlines()
    if again == original:
        return 0
    return sum(1 for a, b in zip(again, original) if a != b) + abs(len(again) - len(original))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            values=dict(type="dict"),
            dest=dict(type="path"),
            from_version=dict(type="raw", required=True),
            to_version=dict(type="raw", required=True),
            backup=dict(type="bool", default=False),
            set_values=dict(type="dict", default={}),
            return_values=dict(type="str", choices=["masked", "unmasked", "none"], default="masked"),
        ),
        mutually_exclusive=[("src", "values")],
        required_one_of=[("src", "values")],
        supports_check_mode=True,
    )
    if not yamlfile.HAS_RUAMEL:
        module.fail_json(msg=missing_required_lib("ruamel.yaml"), exception=str(yamlfile.RUAMEL_IMPORT_ERROR))

    params = module.params
    if params["return_values"] == "unmasked" and not module.no_log:
        module.fail_json(msg="return_values=unmasked returns the secrets of the values in clear: set no_log: true "
                             "on the task (or use return_values=masked).")
    src, dest = params["src"], params["dest"] or params["src"]
    original_text = None
    try:
        params["from_version"] = normalise_version(params["from_version"], "from_version")
        params["to_version"] = normalise_version(params["to_version"], "to_version")
        if src is not None:
            original_text = read_text(src, "src")
        if dest is not None:
            # Before any change: a dest that cannot be written is refused up front.
            check_dest(dest, "dest")
        if src is not None:
            tree, layout = yamlfile.load(original_text, name="src %s" % src)
        else:
            tree, layout = yamlfile.from_plain(params["values"]), yamlfile.Layout()
        result = migrate(tree, params["from_version"], params["to_version"])
        set_values(result, params["set_values"])
    except (InputError, yamlfile.ValuesFileError, MigrationError, VersionError, UnknownRelease) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except  # a bug must still not write a half file
        module.fail_json(msg="Unexpected error while migrating the values: %s" % exc, exception=traceback.format_exc())

    new_text = yamlfile.dump(result.tree, layout)
    changed = False
    backup_file = None
    if dest is not None:
        # A symlinked values file (a checkout, a config-management link) is written through the link.
        dest = os.path.realpath(dest)
        exists = os.path.exists(dest)
        if src is not None and dest == os.path.realpath(src):
            write = result.changed
            if write:
                drift = _formatting_drift(original_text, tree, layout)
                if drift:
                    module.warn("ruamel.yaml also reformats %d line(s) of %s that the migration did not change "
                                "(indentation or spacing it cannot reproduce)." % (drift, dest))
        else:
            write = not exists or _read(module, dest, "dest") != new_text
        if write:
            changed = True
            if not module.check_mode:
                if params["backup"] and exists:
                    backup_file = module.backup_local(dest)
                    os.chmod(backup_file, FILE_MODE)
                _write(module, dest, new_text)
        elif exists:
            changed = module.set_mode_if_different(dest, "0600", changed)

    for warning in result.warnings:
        module.warn(warning)

    output = dict(
        changed=changed,
        changes=[change.as_dict() for change in result.changes],
        manual_actions=[action.as_dict() for action in result.manual_actions],
        migration_warnings=list(result.warnings),
        hops=result.hops,
        dest=dest,
    )
    if backup_file:
        output["backup_file"] = backup_file
    if params["return_values"] == "masked":
        output["values"] = yamlfile.to_plain(mask_tree(result.tree))
    elif params["return_values"] == "unmasked":
        output["values"] = yamlfile.to_plain(result.tree)
    else:
        output["values"] = None
    if module._diff:
        output["diff"] = dict(
            before=yamlfile.dump(mask_tree(tree), layout),
            after=yamlfile.dump(mask_tree(result.tree), layout),
            before_header="%s (%s)" % (src or "values", params["from_version"]),
            after_header="%s (%s)" % (dest or "values", params["to_version"]),
        )
    module.exit_json(**output)


if __name__ == "__main__":
    main()
