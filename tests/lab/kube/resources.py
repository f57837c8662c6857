"""The discovery table of the lab's Kubernetes API server: which resources it serves, and how.

A ``ResourceType`` is one row of an APIResourceList (``/api/v1``, ``/apis/<group>/<version>``):
plural, kind, namespaced, verbs, short names, and the subresources it has. ``Registry`` holds the
built-in types and the ones that CustomResourceDefinitions add while the server runs, like the real
apiextensions server does.

Not modelled: several served versions of one built-in group (each group has exactly one version
here), storage versions and conversion, categories other than ``all``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple = ()
    subresources: tuple = ()
    custom: bool = False
    verbs: tuple = ALL_VERBS
    categories: tuple = ()
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def path_prefix(self) -> str:
        return "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/%s" % self.version

    def singular_name(self) -> str:
        return self.singular or self.kind.lower()


def _t(group, version, plural, kind, namespaced=True, short=(), sub=(), categories=()):
    return ResourceType(group, version, plural, kind, namespaced, tuple(short), tuple(sub), categories=tuple(categories))


BUILTIN_TYPES = (
    _t("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    _t("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "exec"), ("all",)),
    _t("", "v1", "services", "Service", True, ("svc",), ("status",), ("all",)),
    _t("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    _t("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    _t("", "v1", "secrets", "Secret", True),
    _t("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    _t("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)),
    _t("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    _t("", "v1", "events", "Event", True, ("ev",)),
    _t("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    _t("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("status",), ("all",)),
    _t("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("status", "scale"), ("all",)),
    _t("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    _t("batch", "v1", "jobs", "Job", True, (), ("status",), ("all",)),
    _t("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("status",), ("all",)),
    _t("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), ("status",)),
    _t("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    _t("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _t("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _t("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _t("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _t("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), ("status",)),
    _t("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ("status",), ("all",)),
    _t("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False, ("crd", "crds"), ("status",)),
    _t("coordination.k8s.io", "v1", "leases", "Lease", True),
    _t("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
)

# Kinds whose strategic-merge patches are understood; custom resources answer 415 like the real server.
STRATEGIC_KINDS = frozenset(t.kind for t in BUILTIN_TYPES)


class Registry:
    """The served resource types: the built-in ones plus those that CRDs add and remove."""

    def __init__(self):
        self._lock = threading.RLock()
        self._types: list[ResourceType] = []
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._types = list(BUILTIN_TYPES)

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types)

    def groups(self) -> dict:
        """group name -> list of versions, in registration order ("" is the core group)."""
        out: dict = {}
        for rtype in self.all():
            versions = out.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self.all() if t.group == group and t.version == version]

    def by_plural(self, group: str, version: str, plural: str):
        for rtype in self.all():
            if rtype.group == group and rtype.version == version and rtype.plural == plural:
                return rtype
        return None

    def by_kind(self, api_version: str, kind: str):
        for rtype in self.all():
            if rtype.api_version == api_version and rtype.kind == kind:
                return rtype
        return None

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        return [t for t in self.all() if t.group == group and t.plural == plural]

    def register_crd(self, crd: dict) -> list[ResourceType]:
        """Serve every served version of a CustomResourceDefinition; returns the types added."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        added = []
        with self._lock:
            self.unregister_crd(crd)
            for version in spec.get("versions") or []:
                if not version.get("served", True):
                    continue
                sub = []
                subresources = version.get("subresources") or {}
                if "status" in subresources:
                    sub.append("status")
                if "scale" in subresources:
                    sub.append("scale")
                rtype = ResourceType(group, version["name"], names.get("plural", ""), names.get("kind", ""),
                                     spec.get("scope", "Namespaced") == "Namespaced", tuple(names.get("shortNames") or ()),
                                     tuple(sub), custom=True, categories=tuple(names.get("categories") or ()),
                                     singular=names.get("singular", ""))
                self._types.append(rtype)
                added.append(rtype)
        return added

    def unregister_crd(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        plural = (spec.get("names") or {}).get("plural", "")
        with self._lock:
            self._types = [t for t in self._types if not (t.custom and t.group == group and t.plural == plural)]


VELERO_BACKUP_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "backups.velero.io", "labels": {"component": "velero"}},
    "spec": {
        "group": "velero.io",
        "names": {"kind": "Backup", "listKind": "BackupList", "plural": "backups", "singular": "backup"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                      "subresources": {}}],
    },
}
