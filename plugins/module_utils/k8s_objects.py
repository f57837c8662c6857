# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generic namespaced object access for the migration modules (helm_adopt, kots_cleanup).

``ObjectClient`` lists, merge-patches and deletes objects of the kinds in ``KINDS`` (and any other) through the
``kubernetes`` client's ``ApiClient.call_api`` (no discovery round trips), returning plain JSON dicts.
The pure planning functions (``adoption_patch``, ``kots_metadata_patch``) take and return plain dicts, so
they are unit-tested without a cluster.
"""

from __future__ import annotations

import json
import re

from ansible_collections.circleci.server.plugins.module_utils import k8s

# The 14 kinds kots-exporter annotated for Helm and cleaned of KOTS metadata, in its order
# (server-scripts.md section 1.3). Their API paths, and those of the other kinds a CircleCI Server 4.x chart owns
# (namespaced or cluster-scoped), are k8s.KIND_PATHS: known without a discovery round trip.
KINDS = ["ServiceAccount", "ConfigMap", "Job", "DaemonSet", "Secret", "Role", "RoleBinding", "Service", "CronJob",
         "Deployment", "StatefulSet", "NetworkPolicy", "PersistentVolumeClaim", "PodDisruptionBudget"]
DEFAULT_KINDS = list(KINDS)
# Kinds Helm never owns: they belong to a controller (Pods to their workload, ReplicaSets to their Deployment)
# or to the cluster. Refused by name, with the reason.
NOT_ADOPTABLE = {
    "Pod": "Pods belong to their workload (Deployment, StatefulSet, DaemonSet, Job); adopt the workload instead",
    "ReplicaSet": "ReplicaSets belong to their Deployment; adopt the Deployment instead",
    "ControllerRevision": "ControllerRevisions belong to their StatefulSet or DaemonSet",
    "EndpointSlice": "EndpointSlices belong to their Service",
    "Event": "Events are records, not objects a chart owns",
    "Node": "Nodes belong to the cluster",
    "Namespace": "the release's namespace is not part of the release",
    "Lease": "Leases belong to the controllers that hold them",
}
_KIND_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")

HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?%s" % _NAME
_VALUE = r"(%s)?" % _NAME
_SELECTOR_TERM = re.compile(
    r"^\s*(!\s*{key}|{key}|{key}\s*(=|==|!=)\s*{value}|{key}\s+(in|notin)\s*\(\s*{value}(\s*,\s*{value})*\s*\))\s*$".format(
        key=_KEY, value=_VALUE))
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,51}[a-z0-9])?$")


def _split_selector(selector):
    """The terms of a label selector: commas inside 'in (...)' do not split."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return terms


def check_label_selector(selector):
    """Refuse (K8sError) a label selector that is not Kubernetes syntax, before any request is sent."""
    if not selector:
        return
    if len(selector) > 4096:
        raise k8s.K8sError("label_selector is %d characters long: a label selector is short "
                           "(for example kots.io/kotsadm!=true)." % len(selector))
    for term in _split_selector(selector):
        if not _SELECTOR_TERM.match(term):
            raise k8s.K8sError(
                "label_selector %r is not a Kubernetes label selector (the term %r is not key, !key, key=value, "
                "key!=value, key in (a,b) or key notin (a,b)): fix it, for example kots.io/kotsadm!=true. Nothing "
                "was changed." % (selector[:200], term.strip()[:100]))


def check_namespace(namespace):
    """Refuse an empty namespace or one that is not a DNS label."""
    if not namespace or not DNS_LABEL.match(namespace):
        raise k8s.K8sError(
            "namespace %r is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63): give "
            "the namespace of the CircleCI Server install (kubectl get namespaces). Nothing was changed." % (namespace,))


def helm_storage(obj) -> bool:
    """True for helm's own release records (Secrets labelled owner=helm): never touched."""
    meta = obj.get("metadata") or {}
    return obj.get("kind", "Secret") == "Secret" and (meta.get("labels") or {}).get("owner") == "helm"


def object_id(kind, obj) -> str:
    return "%s/%s" % (kind, (obj.get("metadata") or {}).get("name"))


def adoption_patch(obj, release, namespace):
    """(state, patch): state 'adopted' (nothing to do), 'adopt' with the merge patch, or 'conflict'
    when another Helm release owns the object."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    owner = annotations.get(HELM_RELEASE_NAME)
    owner_namespace = annotations.get(HELM_RELEASE_NAMESPACE)
    if (owner and owner != release) or (owner_namespace and owner_namespace != namespace):
        return "conflict", None
    if owner == release and owner_namespace == namespace and labels.get(MANAGED_BY) == "Helm":
        return "adopted", None
    patch = {"metadata": {"labels": {MANAGED_BY: "Helm"},
                          "annotations": {HELM_RELEASE_NAME: release, HELM_RELEASE_NAMESPACE: namespace}}}
    return "adopt", patch


def kots_metadata_patch(obj, label_keys, annotation_keys):
    """The merge patch that removes the given labels and annotations (None when there are none)."""
    meta = obj.get("metadata") or {}
    labels = [key for key in label_keys if key in (meta.get("labels") or {})]
    annotations = [key for key in annotation_keys if key in (meta.get("annotations") or {})]
    if not labels and not annotations:
        return None
    patch = {"metadata": {}}
    if labels:
        patch["metadata"]["labels"] = {key: None for key in labels}
    if annotations:
        patch["metadata"]["annotations"] = {key: None for key in annotations}
    return patch


def metadata_view(obj, keys=None):
    """The labels and annotations of an object (only ``keys`` when given), for diffs."""
    meta = obj.get("metadata") or {}
    view = {}
    for part in ("labels", "annotations"):
        values = meta.get(part) or {}
        view[part] = {k: v for k, v in sorted(values.items()) if keys is None or k in keys}
    return view


class ObjectClient:
    """list / merge-patch / delete of objects of any kind the API server serves; failures raise k8s.K8sError.

    The kinds of ``k8s.KIND_PATHS`` need no round trip; any other kind is looked up
    once through API discovery (``resolve``). Cluster-scoped kinds ignore the namespace argument.
    """

    def __init__(self, api_client, request_timeout=k8s.REQUEST_TIMEOUT):
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.resolved = {}

    @classmethod
    def from_params(cls, params):
        return cls(k8s.api_client_from_params(params), k8s.request_timeout_from_params(params))

    def resolve(self, kind):
        """(API path prefix, plural, namespaced) of ``kind``; K8sError for a kind Helm never owns or none serves."""
        if kind in NOT_ADOPTABLE:
            raise k8s.K8sError("Kind %s cannot be adopted by a Helm release: %s. Remove it from kinds." % (
                kind, NOT_ADOPTABLE[kind]))
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise k8s.K8sError("%r is not a Kubernetes kind (CamelCase, for example Deployment): fix kinds." % (kind,))
        if kind in k8s.KIND_PATHS:
            return k8s.KIND_PATHS[kind]
        if kind not in self.resolved:
            self.resolved[kind] = self._discover(kind)
        return self.resolved[kind]

    def _discover(self, kind):
        prefixes = ["/api/v1"]
        groups = self._call("the API groups", "/apis", "GET") or {}
        for group in groups.get("groups") or []:
            version = (group.get("preferredVersion") or {}).get("groupVersion")
            if version:
                prefixes.append("/apis/" + version)
        for prefix in prefixes:
            listing = self._call("the resources of %s" % prefix, prefix, "GET") or {}
            for resource in listing.get("resources") or []:
                if resource.get("kind") == kind and "/" not in resource.get("name", "/"):
                    return prefix, resource["name"], bool(resource.get("namespaced"))
        raise k8s.K8sError("The API server serves no kind %s (kubectl api-resources lists the kinds): fix kinds." % kind)

    def namespaced(self, kind):
        return self.resolve(kind)[2]

    def path(self, kind, namespace, name=None):
        prefix, plural, namespaced = self.resolve(kind)
        path = "%s/namespaces/%s/%s" % (prefix, namespace, plural) if namespaced else "%s/%s" % (prefix, plural)
        return path + "/" + name if name else path

    def namespace_exists(self, namespace):
        return self._call("namespace %s" % namespace, "/api/v1/namespaces/%s" % namespace, "GET") is not None

    def _call(self, what, path, method, body=None, query=None, content_type=None):
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            data = k8s.send_request(self.api_client, path, method, query, headers, body, self.request_timeout)
        except k8s.ApiException as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise k8s.K8sError(_describe(exc, what, method))
        except (OSError, ValueError) as exc:
            raise k8s.K8sError(self._unreachable(exc, what, method))
        except Exception as exc:  # urllib3 errors do not all derive from OSError  pylint: disable=broad-except
            if type(exc).__module__.startswith("urllib3"):
                raise k8s.K8sError(self._unreachable(exc, what, method))
            raise
        return json.loads(data or b"null")

    def _unreachable(self, exc, what, method):
        host = getattr(getattr(self.api_client, "configuration", None), "host", None)
        if k8s.is_timeout(exc):
            return k8s.describe_api_error(exc, what, host, self.request_timeout)
        return _describe(exc, what, method)

    def list(self, kind, namespace, label_selector=None):
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self._call("the %ss in namespace %s" % (kind, namespace), self.path(kind, namespace), "GET", query=query)
        return (result or {}).get("items") or []

    def get(self, kind, namespace, name):
        return self._call("%s %s/%s" % (kind, namespace, name), self.path(kind, namespace, name), "GET")

    def merge_patch(self, kind, namespace, name, patch):
        return self._call("%s %s/%s" % (kind, namespace, name), self.path(kind, namespace, name), "PATCH",
                          body=patch, content_type="application/merge-patch+json")

    def delete(self, kind, namespace, name, propagation="Background"):
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        return self._call("%s %s/%s" % (kind, namespace, name), self.path(kind, namespace, name), "DELETE",
                          body=body, content_type="application/json")


def release_record(client, namespace, release):
    """The decoded Helm record of ``release`` (its newest deployed revision, else its newest), or None."""
    found = []
    for secret in client.list("Secret", namespace, "owner=helm,name=%s" % release):
        labels = (secret.get("metadata") or {}).get("labels") or {}
        try:
            revision = int(labels.get("version") or 0)
        except ValueError:
            continue
        found.append((labels.get("status") == "deployed", revision, secret))
    if not found:
        return None
    found.sort(key=lambda item: (item[0], item[1]), reverse=True)
    data = k8s.decode_secret_data(found[0][2])
    if not data.get("release"):
        return None
    return k8s.decode_helm_release(data["release"])


def check_kots_3x_release(client, namespace, release):
    """Refuse (K8sError) unless ``release`` in ``namespace`` is a CircleCI Server 3.x release (what KOTS installs)."""
    record = release_record(client, namespace, release)
    if record is None:
        raise k8s.K8sError(
            "No Helm release %s in namespace %s: the KOTS cleanup runs on the namespace of a CircleCI Server 3.x "
            "install, before its release is upgraded to 4.0. Check namespace and release (helm list -A). Nothing "
            "was changed." % (release, namespace))
    chart = k8s.helm_chart_version(record) or ""
    if not re.match(r"^v?3\.\d+\.\d+", chart):
        raise k8s.K8sError(
            "Helm release %s in namespace %s is at chart %s, not a CircleCI Server 3.x release deployed by KOTS: the "
            "KOTS cleanup would delete objects of a working installation. Nothing was changed; for a 4.x install "
            "use the upgrade playbooks." % (release, namespace, chart or "(unknown)"))
    return record


def _describe(exc, what, method):
    status = getattr(exc, "status", None)
    verb = {"GET": "Reading", "PATCH": "Patching", "DELETE": "Deleting"}.get(method, method)
    if status in (401, 403):
        return ("%s %s was refused (HTTP %s): the credentials in use need get, list, patch and delete on it; use a "
                "kubeconfig or token allowed to." % (verb, what, status))
    if status is None:
        return ("Could not reach the Kubernetes API server while %s %s (%s): check that the cluster is up and that "
                "kubeconfig/context/host point at it." % (verb.lower(), what, exc))
    return "%s %s failed (HTTP %s %s): check the API server's health and re-run." % (
        verb, what, status, getattr(exc, "reason", "") or "")
