"""The four PATCH types of the Kubernetes API, applied to JSON-shaped objects.

- ``application/json-patch+json``: RFC 6902, through the ``jsonpatch`` library.
- ``application/merge-patch+json``: RFC 7386 (maps merge, ``null`` deletes, lists are replaced).
- ``application/strategic-merge-patch+json``: lists of known fields are merged by their merge key
  (containers/env/volumes by name, volumeMounts by mountPath, container ports by containerPort,
  service ports by port, ...), with the directives ``$patch`` (merge/replace/delete),
  ``$setElementOrder/<field>``, ``$retainKeys`` and ``$deleteFromPrimitiveList/<field>``.
- ``application/apply-patch+yaml``: server-side apply, approximated as a strategic merge of the
  applied configuration onto the live object.

Not modelled: field ownership (managedFields) and apply conflicts, removal by server-side apply of
fields that a manager stopped applying, the per-type patch strategies of the OpenAPI schema beyond
the table below, ``$patch: delete`` of a whole primitive list.
"""
from __future__ import annotations

import copy

import jsonpatch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

# Field name -> merge key, as the Kubernetes types declare them (patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
}
# Primitive lists with the "merge" strategy (union instead of replace).
MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied (answered 422 or 400 by the server)."""


def json_patch(obj: dict, patch) -> dict:
    try:
        return jsonpatch.apply_patch(obj, patch, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
        raise PatchError("json patch: %s" % exc) from exc


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _merge_key(field: str, items: list):
    if field == "ports":
        for item in items:
            if isinstance(item, dict):
                if "containerPort" in item:
                    return "containerPort"
                if "port" in item:
                    return "port"
        return None
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch):
    """A strategic merge patch applied to ``target`` (a new object is returned)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target)
    orders = {}
    deletions = {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            deletions[key.split("/", 1)[1]] = value or []
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    for key, values in deletions.items():
        if isinstance(result.get(key), list):
            result[key] = [v for v in result[key] if v not in values]
    for key, order in orders.items():
        if isinstance(result.get(key), list):
            result[key] = _apply_order(key, result[key], order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, current, patch: list) -> list:
    current = current if isinstance(current, list) else []
    if patch and isinstance(patch[0], dict) and patch[0].get("$patch") == "replace":
        return [copy.deepcopy(item) for item in patch[1:]]
    if all(not isinstance(item, dict) for item in patch):
        if field in MERGED_PRIMITIVE_LISTS:
            out = list(current)
            out.extend(v for v in patch if v not in out)
            return out
        return copy.deepcopy(patch)
    key = _merge_key(field, patch + current)
    if key is None:
        return [{k: v for k, v in item.items() if k != "$patch"} if isinstance(item, dict) else item for item in patch]
    out = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        if item.get("$patch") == "replace" and len(item) == 1:
            continue
        index = next((i for i, existing in enumerate(out) if isinstance(existing, dict) and existing.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
            continue
        if index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def _apply_order(field: str, items: list, order: list) -> list:
    if not order:
        return items
    if all(not isinstance(o, dict) for o in order):
        ranked = [v for v in order if v in items]
        return ranked + [v for v in items if v not in ranked]
    key = _merge_key(field, order + items)
    if key is None:
        return items
    wanted = [o.get(key) for o in order if isinstance(o, dict)]
    ranked = sorted((i for i in items if isinstance(i, dict) and i.get(key) in wanted), key=lambda i: wanted.index(i.get(key)))
    return ranked + [i for i in items if not (isinstance(i, dict) and i.get(key) in wanted)]


def apply_patch(content_type: str, obj: dict, patch, strategic_allowed: bool = True) -> dict:
    """``obj`` patched with ``patch`` (already parsed) of the given content type."""
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise PatchError("a json patch must be a list of operations")
        return json_patch(obj, patch)
    if not isinstance(patch, dict):
        raise PatchError("the patch body must be an object")
    if content_type == MERGE_PATCH:
        return merge_patch(obj, patch)
    if content_type == STRATEGIC_PATCH:
        if not strategic_allowed:
            raise PatchError("strategic merge patch is not supported for custom resources")
        return strategic_merge(obj, patch)
    if content_type == APPLY_PATCH:
        return strategic_merge(obj, patch) if strategic_allowed else merge_patch(obj, patch)
    raise PatchError("unsupported patch type %s" % content_type)
