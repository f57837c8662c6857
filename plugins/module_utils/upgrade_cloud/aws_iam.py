# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IAM documents of the 4.2 -> 4.3 upgrade: the IRSA trust policy subject and the 4.3 permissions policy.

``replace_subject`` edits a trust policy the way the upgrade guide asks (UPG-4.3 step 5): only the
``...:sub`` condition values equal to ``system:serviceaccount:<ns>:vm-service`` change, every other
statement, principal, action and condition is kept as it is, in its order. ``machine_provisioner_policy``
renders the 4.3 machine-provisioner permissions policy from the one copy of it in
``values/migrations.py`` (the manual action helm_values_migrate prints), with the security group and VPC
filled in. Plain Python, no Ansible import.
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.circleci.server.plugins.module_utils.values.migrations import MACHINE_PROVISIONER_POLICY_4_3

SUBJECT_SUFFIX = ":sub"
POLICY_PLACEHOLDERS = ("<SECURITY_GROUP_ID>", "<VPC_ID>")


class PolicyError(ValueError):
    """A document that cannot be edited as asked; the message says what to do."""


def service_account_subject(namespace, service_account):
    """The OIDC subject of a Kubernetes service account: ``system:serviceaccount:<ns>:<name>``."""
    return "system:serviceaccount:%s:%s" % (namespace, service_account)


_SUBJECT_RE = re.compile(r"^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$",
                         re.ASCII)


def check_subject(subject, name="to_subject"):
    """Refuse a subject that is not exactly one service account: wildcards (``*``, ``?``) would let every matching
    service account of the cluster assume the role."""
    text = str(subject)
    if "*" in text or "?" in text:
        raise PolicyError("%s %r has a wildcard: a trust policy subject with * or ? lets every matching service "
                          "account of the cluster assume the role. Name one service account: "
                          "system:serviceaccount:<namespace>:<name>." % (name, subject))
    if not _SUBJECT_RE.match(text):
        raise PolicyError("%s %r is not a service account subject: write system:serviceaccount:<namespace>:<name>, "
                          "for example system:serviceaccount:circleci-server:machine-provisioner." % (name, subject))
    return text


def _statements(document):
    if not isinstance(document, dict):
        raise PolicyError("The trust policy is not a JSON object: %r" % (document,))
    statements = document.get("Statement")
    if isinstance(statements, dict):
        return [statements]
    if isinstance(statements, list):
        return statements
    raise PolicyError("The trust policy has no Statement list.")


def subjects(document):
    """Every ``*:sub`` condition value of a trust policy, in order (duplicates kept)."""
    found = []
    for statement in _statements(document):
        for block in (statement.get("Condition") or {}).values():
            if not isinstance(block, dict):
                continue
            for key, value in block.items():
                if str(key).lower().endswith(SUBJECT_SUFFIX):
                    found.extend(value if isinstance(value, list) else [value])
    return found


def replace_subject(document, from_subject, to_subject, keep_from_subject=False):
    """Return ``(new_document, changed)``: ``from_subject`` replaced by ``to_subject`` in every ``*:sub`` condition.

    With ``keep_from_subject`` the new subject is added beside the old one (a list: either may assume the
    role) instead of replacing it. A condition that already names ``to_subject`` is left alone (idempotent);
    when it names both and ``keep_from_subject`` is false, the old one is dropped. Nothing else changes.
    Raises ``PolicyError`` when neither subject appears: the role is not the one vm-service used.
    """
    if not from_subject or not to_subject or from_subject == to_subject:
        raise PolicyError("Give two different subjects to replace (got %r and %r)." % (from_subject, to_subject))
    check_subject(to_subject, "to_subject")
    current = subjects(document)
    if from_subject not in current and to_subject not in current:
        raise PolicyError(
            "No statement of this trust policy has the subject %s or %s (subjects found: %s). Check the role name and "
            "the namespace, or update the trust policy by hand." % (from_subject, to_subject, ", ".join(map(str, current)) or "none"))
    new = copy.deepcopy(document)
    for statement in _statements(new):
        for block in (statement.get("Condition") or {}).values():
            if not isinstance(block, dict):
                continue
            for key in list(block):
                if not str(key).lower().endswith(SUBJECT_SUFFIX):
                    continue
                value = block[key]
                values = list(value) if isinstance(value, list) else [value]
                if from_subject not in values:
                    continue
                edited = []
                for item in values:
                    if item == from_subject:
                        if keep_from_subject:
                            edited.append(item)
                        if to_subject not in values and to_subject not in edited:
                            edited.append(to_subject)
                    elif item not in edited:
                        edited.append(item)
                if isinstance(value, list) or len(edited) > 1:
                    block[key] = edited
                else:
                    block[key] = edited[0]
    return new, new != document


def normalise_document(document):
    """A policy document as a dict (IAM answers URL-decoded JSON strings or dicts)."""
    if isinstance(document, (bytes, str)):
        from urllib.parse import unquote  # pylint: disable=import-outside-toplevel
        text = document.decode() if isinstance(document, bytes) else document
        try:
            return json.loads(text)
        except ValueError:
            return json.loads(unquote(text))
    return document


def machine_provisioner_policy(security_group_id, vpc_id):
    """The 4.3 machine-provisioner permissions policy (P3-4.3 'Set up authentication'), as a dict.

    Tag value ``ManagedBy=circleci-machine-provisioner``, no DLC volume actions; RunInstances limited to the
    machines' security group and the VPC.
    """
    for name, value, prefix in (("security group", security_group_id, "sg-"), ("VPC", vpc_id, "vpc-")):
        if not value or not str(value).startswith(prefix):
            raise PolicyError("The machine-provisioner policy needs the %s ID (%s...), got %r." % (name, prefix, value))
    text = MACHINE_PROVISIONER_POLICY_4_3.replace("<SECURITY_GROUP_ID>", security_group_id).replace("<VPC_ID>", vpc_id)
    return json.loads(text)
