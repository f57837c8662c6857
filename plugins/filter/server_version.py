# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: server_version
short_description: Check and normalise a CircleCI Server (or Kubernetes) version
version_added: 0.1.0
author:
  - circleci.server maintainers (@circleci-server-ansible)
description:
  - The collection's one version parser (the one its modules and upgrade planner use), as a filter, so that a
    role checks a version variable the same way a module does and passes on the normalised string.
  - Returns MAJOR.MINOR.PATCH (V(v4.3.9) becomes V(4.3.9)), or MAJOR.MINOR with O(form=minor).
  - Fails the task with a message naming O(name) and the accepted form for anything else. Refused are
    pre-releases (V(4.3.9-rc1)), anything around the version (V(rm-rf-4.3.9)), non-ASCII digits, empty
    values, and numbers (an unquoted V(4.3) in YAML is a float, and V(4.10) is V(4.1)).
options:
  _input:
    description: The version, as the operator wrote it.
    type: raw
    required: true
  name:
    description: The variable's name, for the message.
    type: str
    default: version
  kind:
    description: V(server), or V(kubernetes) which also accepts a vendor build suffix (V(v1.27.16-eks-a18cd3a)).
    type: str
    default: server
    choices: [server, kubernetes]
  form:
    description: V(patch) requires MAJOR.MINOR.PATCH, V(minor) requires MAJOR.MINOR, V(any) accepts both.
    type: str
    default: patch
    choices: [patch, minor, any]
"""

EXAMPLES = r"""
- name: Normalise the target version once, for every role that follows
  ansible.builtin.set_fact:
    preflight_target_version: "{{ preflight_target_version | circleci.server.server_version('preflight_target_version') }}"
"""

RETURN = r"""
_value:
  description: The normalised version, for example V(4.3.9) (or V(4.3) with O(form=minor)).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.circleci.server.plugins.module_utils.versions import VersionError, normalise_version


def server_version(value, name="version", kind="server", form="patch"):
    """The normalised version string, or a task failure that names ``name`` and the accepted form."""
    if kind not in ("server", "kubernetes") or form not in ("patch", "minor", "any"):
        raise AnsibleFilterError("server_version: kind must be server or kubernetes and form patch, minor or any "
                                 "(got kind=%r, form=%r)." % (kind, form))
    try:
        return normalise_version(value, name, kind, form)
    except VersionError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """circleci.server.server_version."""

    def filters(self):
        return {"server_version": server_version}
