"""Object storage of the lab's Kubernetes API server: CRUD, resourceVersion, selectors, watch events.

What it does like etcd + the generic registry of kube-apiserver:
- one global resourceVersion counter; every write bumps it and is kept as a watch event;
  a write that changes nothing (same content) keeps the object and its resourceVersion, like the
  real server, so that idempotent clients see no change;
- server-set ``uid``, ``creationTimestamp``, ``generation`` (bumped when anything but metadata and
  status changes), ``generateName``;
- PUT with a stale ``metadata.resourceVersion`` -> 409 Conflict; POST of an existing name -> 409
  AlreadyExists; GET/PUT/PATCH/DELETE of a missing object -> 404 NotFound;
- the main resource of a type with a status subresource ignores status changes, and the status
  subresource ignores everything but status;
- label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``) and field selectors
  (``=``, ``==``, ``!=`` on any dotted path: metadata.name, metadata.namespace, status.phase,
  spec.nodeName, involvedObject.name...);
- deletion with propagation through ownerReferences (Background/Foreground delete the dependents
  at once, Orphan strips the owner reference); a deleted namespace is Terminating (no new content,
  403) for ``namespace_grace`` wall seconds (0.2), then goes with everything in it; ``default``,
  ``kube-system`` and ``kube-public`` cannot be deleted.

Not modelled: finalizers and graceful deletion (every delete but a namespace's is immediate), admission webhooks,
schema validation and defaulting beyond the few defaults that clients dereference, field managers,
list pagination (``limit`` is accepted, everything comes in one page), resourceVersionMatch.
"""
from __future__ import annotations

import base64
import copy
import re
import threading
import uuid
from datetime import datetime, timezone

from .patch import STRATEGIC_PATCH, APPLY_PATCH, PatchError, apply_patch
from .resources import STRATEGIC_KINDS, Registry, ResourceType

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Fields that the real API server refuses to change after creation (422 "field is immutable").
IMMUTABLE_SPEC_FIELDS = {
    "Deployment": ("selector",),
    "StatefulSet": ("selector", "volumeClaimTemplates", "serviceName"),
    "DaemonSet": ("selector",),
    "ReplicaSet": ("selector",),
    "Job": ("selector", "template"),
}
EVENT_HISTORY = 20000
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class ApiError(Exception):
    """An error the API answers with a metav1.Status."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure" if code >= 400 else "Success",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def not_found(rtype: ResourceType, name: str) -> ApiError:
    res = "%s.%s" % (rtype.plural, rtype.group) if rtype.group else rtype.plural
    return ApiError(404, "NotFound", '%s "%s" not found' % (res, name),
                    {"name": name, "group": rtype.group, "kind": rtype.plural})


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------- selectors

def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$")


def parse_label_selector(text: str | None) -> list[tuple]:
    """``app=x,tier in (a,b),!legacy`` -> [(key, op, values)]; raises ApiError 400 when malformed."""
    reqs = []
    for part in _split_top_level(text or ""):
        match = _SET_RE.match(part)
        if match:
            values = {v.strip() for v in match.group(3).split(",") if v.strip()}
            reqs.append((match.group(1), match.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            reqs.append((key.strip(), "!=", {value.strip()}))
        elif "==" in part:
            key, value = part.split("==", 1)
            reqs.append((key.strip(), "=", {value.strip()}))
        elif "=" in part:
            key, value = part.split("=", 1)
            reqs.append((key.strip(), "=", {value.strip()}))
        elif part.startswith("!"):
            reqs.append((part[1:].strip(), "!exists", set()))
        elif re.match(r"^[A-Za-z0-9./_-]+$", part):
            reqs.append((part, "exists", set()))
        else:
            raise ApiError(400, "BadRequest", "unable to parse requirement: %r" % part)
    return reqs


def match_labels(labels: dict | None, reqs: list[tuple]) -> bool:
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        value = labels.get(key)
        if op == "=" and not (present and value in values):
            return False
        if op == "!=" and present and value in values:
            return False
        if op == "in" and not (present and value in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


def selector_from_label_selector(selector: dict | None) -> list[tuple]:
    """A metav1.LabelSelector (matchLabels + matchExpressions) as requirements."""
    selector = selector or {}
    reqs = [(k, "=", {v}) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append((expr.get("key"), ops.get(expr.get("operator"), "in"), set(expr.get("values") or ())))
    return reqs


def parse_field_selector(text: str | None) -> list[tuple]:
    reqs = []
    for part in _split_top_level(text or ""):
        for op in ("!=", "==", "="):
            if op in part:
                key, value = part.split(op, 1)
                reqs.append((key.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            raise ApiError(400, "BadRequest", "invalid field selector: %r" % part)
    return reqs


def dotted(obj: dict, path: str):
    value = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def match_fields(obj: dict, reqs: list[tuple]) -> bool:
    for path, op, expected in reqs:
        value = dotted(obj, path)
        value = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if (value == expected) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------------- store

class Store:
    """Every object of the lab cluster, keyed by (group, plural, namespace, name); thread-safe."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.lock = threading.RLock()
        self.controllers = None
        self._objects: dict = {}
        self._rv = 0
        self._events: list = []
        self._first_event_rv = 1
        self._ip = 0
        self.namespace_grace = 0.2

    # ------------------------------------------------------------------ internals
    def reset(self) -> None:
        with self.lock:
            self._objects.clear()
            self._events.clear()
            self._first_event_rv = self._rv + 1

    @property
    def resource_version(self) -> int:
        return self._rv

    def next_ip(self, prefix: str) -> str:
        with self.lock:
            self._ip += 1
            return "%s.%d.%d" % (prefix, (self._ip // 250) % 250, self._ip % 250 + 2)

    @staticmethod
    def _key(rtype: ResourceType, namespace: str | None, name: str) -> tuple:
        return (rtype.group, rtype.plural, namespace if rtype.namespaced else None, name)

    def _record(self, kind: str, rtype: ResourceType, obj: dict) -> None:
        self._events.append({"rv": self._rv, "type": kind, "group": rtype.group, "plural": rtype.plural,
                             "namespace": obj["metadata"].get("namespace"), "object": copy.deepcopy(obj)})
        if len(self._events) > EVENT_HISTORY:
            drop = len(self._events) - EVENT_HISTORY
            self._first_event_rv = self._events[drop]["rv"]
            del self._events[:drop]

    def _store(self, rtype: ResourceType, obj: dict, event: str) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        meta = obj["metadata"]
        self._objects[self._key(rtype, meta.get("namespace"), meta["name"])] = obj
        self._record(event, rtype, obj)
        return obj

    @staticmethod
    def _view(rtype: ResourceType, obj: dict) -> dict:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rtype.api_version
        out["kind"] = rtype.kind
        return out

    def _check_namespace(self, rtype: ResourceType, namespace: str | None) -> None:
        if not rtype.namespaced:
            return
        if not namespace:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the request")
        ns_type = self.registry.by_plural("", "v1", "namespaces")
        ns_obj = self._objects.get(self._key(ns_type, None, namespace))
        if ns_obj is None:
            raise ApiError(404, "NotFound", 'namespaces "%s" not found' % namespace,
                           {"name": namespace, "kind": "namespaces"})
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", "%s is forbidden: unable to create new content in namespace %s because it is "
                           "being terminated" % (rtype.plural, namespace), {"kind": rtype.plural})

    # ------------------------------------------------------------------ reads
    def raw(self, rtype: ResourceType, namespace: str | None, name: str):
        """The stored object itself (callers hold ``lock`` and must not keep it)."""
        return self._objects.get(self._key(rtype, namespace, name))

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        with self.lock:
            obj = self.raw(rtype, namespace, name)
            if obj is None:
                raise not_found(rtype, name)
            return self._view(rtype, obj)

    def list(self, rtype: ResourceType, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list, int]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        with self.lock:
            items = []
            for (group, plural, ns, _name), obj in sorted(self._objects.items(), key=lambda kv: (kv[0][2] or "", kv[0][3])):
                if group != rtype.group or plural != rtype.plural:
                    continue
                if namespace and rtype.namespaced and ns != namespace:
                    continue
                if not match_labels(obj["metadata"].get("labels"), labels) or not match_fields(obj, fields):
                    continue
                items.append(self._view(rtype, obj))
            return items, self._rv

    def iter_raw(self, group: str, plural: str, namespace: str | None = None):
        """Stored objects of one resource (callers hold ``lock``)."""
        return [obj for (g, p, ns, _n), obj in list(self._objects.items())
                if g == group and p == plural and (namespace is None or ns == namespace)]

    def events_after(self, rv: int) -> list:
        with self.lock:
            if rv + 1 < self._first_event_rv:
                raise ApiError(410, "Expired", "too old resource version: %d (%d)" % (rv, self._first_event_rv - 1))
            return [e for e in self._events if e["rv"] > rv]

    # ------------------------------------------------------------------ writes
    def create(self, rtype: ResourceType, namespace: str | None, obj: dict, dry_run: bool = False) -> dict:
        obj = copy.deepcopy(obj)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        self._check_kind(rtype, obj)
        with self.lock:
            if rtype.namespaced:
                body_ns = meta.get("namespace")
                if body_ns and namespace and body_ns != namespace:
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
                namespace = namespace or body_ns
                self._check_namespace(rtype, namespace)
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise ApiError(422, "Invalid", "%s is invalid: metadata.name: Required value: name or generateName is required"
                                   % rtype.kind, {"kind": rtype.kind})
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            self._validate_name(rtype, meta["name"])
            if self.raw(rtype, namespace, meta["name"]) is not None:
                res = "%s.%s" % (rtype.plural, rtype.group) if rtype.group else rtype.plural
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (res, meta["name"]),
                               {"name": meta["name"], "group": rtype.group, "kind": rtype.plural})
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            meta.pop("resourceVersion", None)
            meta.pop("deletionTimestamp", None)
            if "spec" in obj or rtype.custom:
                meta["generation"] = 1
            obj["apiVersion"] = rtype.api_version
            obj["kind"] = rtype.kind
            if self.controllers is not None:
                self.controllers.admit(rtype, obj, None)
            if dry_run:
                return self._view(rtype, obj)
            self._store(rtype, obj, "ADDED")
            if self.controllers is not None:
                self.controllers.reconcile(rtype, obj)
            return self._view(rtype, self.raw(rtype, namespace, meta["name"]) or obj)

    def update(self, rtype: ResourceType, namespace: str | None, name: str, obj: dict, subresource: str | None = None,
               dry_run: bool = False, check_rv: bool = True) -> dict:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        if subresource is None:
            self._check_kind(rtype, obj)
        with self.lock:
            current = self.raw(rtype, namespace, name)
            if current is None:
                raise not_found(rtype, name)
            if meta.get("name") and meta["name"] != name:
                raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)" % (meta["name"], name))
            if check_rv and meta.get("resourceVersion") and meta["resourceVersion"] != current["metadata"]["resourceVersion"]:
                res = "%s.%s" % (rtype.plural, rtype.group) if rtype.group else rtype.plural
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               'please apply your changes to the latest version and try again' % (res, name),
                               {"name": name, "group": rtype.group, "kind": rtype.plural})
            return self._replace(rtype, current, obj, subresource, dry_run)

    def _replace(self, rtype: ResourceType, current: dict, obj: dict, subresource: str | None, dry_run: bool) -> dict:
        meta = obj["metadata"]
        if subresource == "status":
            new = copy.deepcopy(current)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        elif subresource == "scale":
            new = copy.deepcopy(current)
            replicas = (obj.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", "Scale.autoscaling \"%s\" is invalid: spec.replicas: Invalid value"
                               % current["metadata"]["name"])
            new.setdefault("spec", {})["replicas"] = replicas
        else:
            new = obj
            new["apiVersion"] = rtype.api_version
            new["kind"] = rtype.kind
            for key in ("uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp"):
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
                else:
                    meta.pop(key, None)
            if "status" in rtype.subresources:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
            for field in IMMUTABLE_SPEC_FIELDS.get(rtype.kind, ()) if not rtype.custom else ():
                old_value = (current.get("spec") or {}).get(field)
                if old_value is not None and (new.get("spec") or {}).get(field) != old_value:
                    raise ApiError(422, "Invalid", '%s.%s "%s" is invalid: spec.%s: Invalid value: field is immutable'
                                   % (rtype.kind, rtype.group, current["metadata"]["name"], field),
                                   {"name": current["metadata"]["name"], "group": rtype.group, "kind": rtype.kind})
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if self.controllers is not None:
            self.controllers.admit(rtype, new, current)
        if _comparable(new) == _comparable(current):
            return self._view(rtype, current)
        if "generation" in current["metadata"] and _spec_part(new) != _spec_part(current):
            new["metadata"]["generation"] = current["metadata"]["generation"] + 1
        if dry_run:
            return self._view(rtype, new)
        self._store(rtype, new, "MODIFIED")
        if self.controllers is not None:
            self.controllers.reconcile(rtype, new)
        return self._view(rtype, self.raw(rtype, new["metadata"].get("namespace"), new["metadata"]["name"]) or new)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, content_type: str, patch, subresource: str | None = None,
              dry_run: bool = False) -> tuple[dict, bool]:
        """Returns (object, created): server-side apply creates a missing object."""
        with self.lock:
            current = self.raw(rtype, namespace, name)
            if current is None:
                if content_type == APPLY_PATCH and subresource is None and isinstance(patch, dict):
                    body = copy.deepcopy(patch)
                    body.setdefault("metadata", {})["name"] = name
                    return self.create(rtype, namespace, body, dry_run), True
                raise not_found(rtype, name)
            if content_type == STRATEGIC_PATCH and rtype.custom:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types "
                               "include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
            base = self._view(rtype, current)
            if subresource == "scale":
                base = scale_of(rtype, current)
            try:
                patched = apply_patch(content_type, base, patch, strategic_allowed=rtype.kind in STRATEGIC_KINDS and not rtype.custom)
            except PatchError as exc:
                raise ApiError(422, "Invalid", str(exc)) from exc
            if not isinstance(patched, dict):
                raise ApiError(400, "BadRequest", "the patch did not produce an object")
            patched.setdefault("metadata", {})
            if subresource is None:
                if content_type == APPLY_PATCH:
                    patched["metadata"].pop("resourceVersion", None)
                self._check_kind(rtype, patched)
            if patched["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"]):
                res = "%s.%s" % (rtype.plural, rtype.group) if rtype.group else rtype.plural
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               'please apply your changes to the latest version and try again' % (res, name))
            result = self._replace(rtype, current, patched, subresource, dry_run)
            if subresource == "scale":
                result = scale_of(rtype, self.raw(rtype, namespace, name) or result)
            return result, False

    def delete(self, rtype: ResourceType, namespace: str | None, name: str, propagation: str | None = None,
               dry_run: bool = False, preconditions: dict | None = None) -> dict:
        with self.lock:
            current = self.raw(rtype, namespace, name)
            if current is None:
                raise not_found(rtype, name)
            preconditions = preconditions or {}
            if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
                raise ApiError(409, "Conflict", "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                               % (preconditions["uid"], current["metadata"]["uid"]))
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "Precondition failed: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s"
                               % (preconditions["resourceVersion"], current["metadata"]["resourceVersion"]))
            if rtype.kind == "Namespace" and not rtype.group:
                if name in PROTECTED_NAMESPACES:
                    raise ApiError(403, "Forbidden", 'namespaces "%s" is forbidden: this namespace may not be deleted' % name,
                                   {"name": name, "kind": "namespaces"})
                if not dry_run:
                    return self._view(rtype, self._terminate_namespace(rtype, current))
            view = self._view(rtype, current)
            if dry_run:
                return view
            self._remove(rtype, current, propagation or _default_propagation(rtype))
            return view

    def _terminate_namespace(self, rtype: ResourceType, namespace: dict) -> dict:
        """A deleted namespace is Terminating (no new content) for ``namespace_grace`` wall seconds,
        then goes with everything in it, like the real namespace controller (only faster)."""
        if namespace["metadata"].get("deletionTimestamp"):
            return namespace
        terminating = copy.deepcopy(namespace)
        terminating["metadata"]["deletionTimestamp"] = now_rfc3339()
        terminating["metadata"]["deletionGracePeriodSeconds"] = 0
        terminating["status"] = {"phase": "Terminating"}
        stored = self._store(rtype, terminating, "MODIFIED")
        uid = stored["metadata"]["uid"]
        name = stored["metadata"]["name"]

        def finalize():
            with self.lock:
                current = self.raw(rtype, None, name)
                if current is not None and current["metadata"]["uid"] == uid:
                    self._remove(rtype, current, "Background")

        if self.namespace_grace <= 0:
            finalize()
            return stored
        timer = threading.Timer(self.namespace_grace, finalize)
        timer.daemon = True
        timer.start()
        return stored

    def _remove(self, rtype: ResourceType, obj: dict, propagation: str) -> None:
        meta = obj["metadata"]
        key = self._key(rtype, meta.get("namespace"), meta["name"])
        if self._objects.pop(key, None) is None:
            return
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._record("DELETED", rtype, gone)
        uid = meta.get("uid")
        if rtype.kind == "Namespace" and not rtype.group:
            for okey, child in list(self._objects.items()):
                if okey[2] == meta["name"]:
                    child_type = self._type_of(okey)
                    if child_type is not None:
                        self._remove(child_type, child, "Background")
        for okey, child in list(self._objects.items()):
            refs = child["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            child_type = self._type_of(okey)
            if child_type is None:
                continue
            if propagation == "Orphan":
                orphan = copy.deepcopy(child)
                orphan["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                if not orphan["metadata"]["ownerReferences"]:
                    del orphan["metadata"]["ownerReferences"]
                self._store(child_type, orphan, "MODIFIED")
            else:
                self._remove(child_type, child, propagation)
        if self.controllers is not None:
            self.controllers.deleted(rtype, obj)

    def remove(self, rtype: ResourceType, obj: dict, propagation: str = "Background") -> None:
        """Delete a stored object from a controller (lock held)."""
        self._remove(rtype, obj, propagation)

    def put(self, rtype: ResourceType, obj: dict) -> dict:
        """Store a controller's write as is, when it changed something (lock held)."""
        meta = obj["metadata"]
        current = self.raw(rtype, meta.get("namespace"), meta["name"])
        if current is not None and _comparable(current) == _comparable(obj):
            return current
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        return self._store(rtype, obj, "ADDED" if current is None else "MODIFIED")

    def _type_of(self, key: tuple):
        group, plural = key[0], key[1]
        for rtype in self.registry.all():
            if rtype.group == group and rtype.plural == plural:
                return rtype
        return None

    @staticmethod
    def _check_kind(rtype: ResourceType, obj: dict) -> None:
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind and kind != rtype.kind:
            raise ApiError(400, "BadRequest", "the kind in the data (%s) does not match the expected kind (%s)" % (kind, rtype.kind))
        if api_version and not rtype.custom and api_version != rtype.api_version:
            raise ApiError(400, "BadRequest", "the API version in the data (%s) does not match the expected API version (%s)"
                           % (api_version, rtype.api_version))

    @staticmethod
    def _validate_name(rtype: ResourceType, name: str) -> None:
        if len(name) > 253 or not DNS_SUBDOMAIN.match(name) or (rtype.kind in ("Namespace", "Service") and "." in name):
            raise ApiError(422, "Invalid", '%s "%s" is invalid: metadata.name: Invalid value: "%s": a lowercase RFC 1123 subdomain '
                           "must consist of lower case alphanumeric characters, '-' or '.'" % (rtype.kind, name, name),
                           {"name": name, "group": rtype.group, "kind": rtype.kind})


def _default_propagation(rtype: ResourceType) -> str:
    # The real defaults: Orphan for the legacy extensions, Background for everything served here.
    del rtype
    return "Background"


def _comparable(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out.get("metadata", {}).pop("resourceVersion", None)
    out.get("metadata", {}).pop("managedFields", None)
    return out


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def scale_of(rtype: ResourceType, obj: dict) -> dict:
    """The autoscaling/v1 Scale of a deployment/statefulset/replicaset (or a CR with a scale subresource)."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector")
    if isinstance(selector, dict):
        selector = ",".join("%s=%s" % kv for kv in sorted((selector.get("matchLabels") or {}).items()))
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                         "resourceVersion": meta.get("resourceVersion"), "creationTimestamp": meta.get("creationTimestamp")},
            "spec": {"replicas": spec.get("replicas", 1)},
            "status": {"replicas": status.get("replicas", 0), "selector": selector or ""}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
