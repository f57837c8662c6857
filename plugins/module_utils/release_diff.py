# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Helm upgrade will change, computed without the helm-diff plugin.

The input is two rendered manifest streams: the release as deployed (``helm get manifest``) and the
target chart rendered with the values the upgrade will use (``helm template``). Resources are matched by
(apiVersion group, kind, namespace, name); each one is added, removed or changed, and a changed one
carries its field-level changes. Secret ``data``/``stringData`` values never leave this module in clear:
they become a mask, and only whether they changed is reported.

Plain Python: the module runs helm and hands the two streams here.
"""

from __future__ import annotations

import base64
import re

try:
    import yaml
except ImportError:  # reported by the module: PyYAML is an ansible-core requirement on the controller
    yaml = None

from ansible_collections.circleci.server.plugins.module_utils.values.masking import is_secret_key, mask_tree

SECRET_MASK = "********"
# Fields the API server or helm set, which say nothing about what an upgrade changes.
_IGNORED_METADATA = ("creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink")


class ManifestError(ValueError):
    """A manifest stream that is not YAML Kubernetes objects."""


def parse_manifests(text: str, default_namespace: str) -> dict:
    """{(group, kind, namespace, name): object} for every object in a multi-document YAML stream."""
    resources = {}
    try:
        documents = list(yaml.safe_load_all(text or ""))
    except yaml.YAMLError as exc:
        raise ManifestError("the rendered manifests are not valid YAML: %s" % exc) from None
    for doc in documents:
        if not doc:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ManifestError("a rendered document is not a Kubernetes object: %.80r" % (doc,))
        if doc["kind"].endswith("List") and isinstance(doc.get("items"), list):
            items = doc["items"]
        else:
            items = [doc]
        for obj in items:
            resources[resource_key(obj, default_namespace)] = obj
    return resources


def resource_key(obj: dict, default_namespace: str) -> tuple:
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    metadata = obj.get("metadata") or {}
    # Cluster-scoped kinds carry no namespace; helm template leaves it off namespaced ones too.
    namespace = metadata.get("namespace") or default_namespace
    return (group, obj["kind"], namespace, metadata.get("name", ""))


def _normalised(obj: dict) -> dict:
    obj = dict(obj)
    metadata = dict(obj.get("metadata") or {})
    for key in _IGNORED_METADATA:
        metadata.pop(key, None)
    # Already part of the resource key; helm template leaves it off where helm get manifest has it.
    metadata.pop("namespace", None)
    obj["metadata"] = metadata
    obj.pop("status", None)
    # A Secret's stringData is stored as data by the API server; compare both as data.
    if obj.get("kind") == "Secret" and isinstance(obj.get("stringData"), dict):
        data = dict(obj.get("data") or {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    return obj


def _named_list(value) -> bool:
    return isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value)


def field_changes(before, after, path="") -> list:
    """[{path, before, after}] for every leaf that differs; lists of named items are matched by name."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            sub = "%s.%s" % (path, key) if path else str(key)
            if key not in before:
                changes.append({"path": sub, "before": None, "after": after[key]})
            elif key not in after:
                changes.append({"path": sub, "before": before[key], "after": None})
            else:
                changes.extend(field_changes(before[key], after[key], sub))
        return changes
    if _named_list(before) and _named_list(after):
        # containers, env, volumes, ports...: a reordering is not a change, a renamed item is.
        before_by_name = {item["name"]: item for item in before}
        after_by_name = {item["name"]: item for item in after}
        changes = []
        for name in sorted(set(before_by_name) | set(after_by_name), key=str):
            sub = "%s[%s]" % (path, name)
            changes.extend(field_changes(before_by_name.get(name), after_by_name.get(name), sub)
                           if name in before_by_name and name in after_by_name
                           else [{"path": sub, "before": before_by_name.get(name), "after": after_by_name.get(name)}])
        return changes
    if before != after:
        return [{"path": path, "before": before, "after": after}]
    return []


def _secret_path(path) -> bool:
    """Whether a change path names a secret: a key or an env var name along it (env[SMTP_PASSWORD].value)."""
    return is_secret_key(re.split(r"[.\[\]]+", str(path)))


def _mask_secret_changes(kind: str, changes: list) -> list:
    masked = []
    for change in changes:
        whole = (kind == "Secret" and change["path"].split(".", 1)[0] in ("data", "stringData")) or \
            _secret_path(change["path"])
        if whole:
            change = {"path": change["path"],
                      "before": None if change["before"] is None else SECRET_MASK,
                      "after": None if change["after"] is None else SECRET_MASK}
        else:
            # Values the masking module calls secret (keys below this path, DSN and URL passwords).
            change = {"path": change["path"], "before": mask_tree(change["before"]), "after": mask_tree(change["after"])}
        masked.append(change)
    return masked


def diff_releases(current_text: str, target_text: str, namespace: str) -> dict:
    """Compare the deployed release with the rendered target.

    Returns {"resources": [...], "summary": {"added", "removed", "changed", "unchanged"}} where each
    resource is {"kind", "api_group", "namespace", "name", "action", "changes"}, sorted by kind and name.
    """
    current = parse_manifests(current_text, namespace)
    target = parse_manifests(target_text, namespace)
    resources = []
    unchanged = 0
    for key in sorted(set(current) | set(target)):
        group, kind, ns, name = key
        entry = {"api_group": group, "kind": kind, "namespace": ns, "name": name, "changes": []}
        if key not in current:
            entry["action"] = "added"
        elif key not in target:
            entry["action"] = "removed"
        else:
            changes = field_changes(_normalised(current[key]), _normalised(target[key]))
            if not changes:
                unchanged += 1
                continue
            entry["action"] = "changed"
            entry["changes"] = _mask_secret_changes(kind, changes)
        resources.append(entry)
    summary = {action: sum(1 for r in resources if r["action"] == action) for action in ("added", "removed", "changed")}
    summary["unchanged"] = unchanged
    return {"resources": resources, "summary": summary}


def render_diff_text(result: dict) -> str:
    """A human diff (what an operator reads in --diff output), secrets already masked."""
    lines = []
    for res in result["resources"]:
        title = "%s %s/%s" % (res["kind"], res["namespace"], res["name"])
        if res["action"] == "added":
            lines.append("+ %s (new)" % title)
        elif res["action"] == "removed":
            lines.append("- %s (removed)" % title)
        else:
            lines.append("~ %s" % title)
            for change in res["changes"]:
                lines.append("    %s: %s -> %s" % (change["path"], _short(change["before"]), _short(change["after"])))
    summary = result["summary"]
    lines.append("%d to add, %d to change, %d to remove, %d unchanged" % (
        summary["added"], summary["changed"], summary["removed"], summary["unchanged"]))
    return "\n".join(lines) + "\n"


def _short(value, limit=120) -> str:
    text = "<absent>" if value is None else yaml.safe_dump(value, default_flow_style=True, width=10000).strip()
    if text.endswith("\n..."):
        text = text[:-4]
    text = text.replace("\n...", "")
    return text if len(text) <= limit else text[:limit - 3] + "..."
