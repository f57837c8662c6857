# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generic namespaced object access for the migration modules (helm_adopt, kots_cleanup).

``ObjectClient`` lists, merge-patches and deletes objects of the kinds in ``KINDS`` through the
``kubernetes`` client's ``ApiClient.call_api`` (no discovery round trips), returning plain JSON dicts.
The pure planning functions (``adoption_patch``, ``kots_metadata_patch``) take and return plain dicts, so
they are unit-tested without a cluster.
"""

from __future__ import annotations

import json

from ansible_collections.circleci.server.plugins.module_utils import k8s

# The 14 kinds kots-exporter annotated for Helm and cleaned of KOTS metadata, in its order
# (server-scripts.md section 1.3): kind -> (API path prefix, plural).
KINDS = {
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Job": ("/apis/batch/v1", "jobs"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "Secret": ("/api/v1", "secrets"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "Service": ("/api/v1", "services"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
}
DEFAULT_KINDS = list(KINDS)

HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


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
    """list / merge-patch / delete of namespaced objects of ``KINDS``; failures raise k8s.K8sError."""

    def __init__(self, api_client, request_timeout=k8s.REQUEST_TIMEOUT):
        self.api_client = api_client
        self.request_timeout = request_timeout

    @classmethod
    def from_params(cls, params):
        return cls(k8s.api_client_from_params(params), k8s.request_timeout_from_params(params))

    @staticmethod
    def path(kind, namespace, name=None):
        try:
            prefix, plural = KINDS[kind]
        except KeyError:
            raise k8s.K8sError("Unknown kind %s: use one of %s." % (kind, ", ".join(KINDS)))
        path = "%s/namespaces/%s/%s" % (prefix, namespace, plural)
        return path + "/" + name if name else path

    def _call(self, what, path, method, body=None, query=None, content_type=None):
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            data = self._send(path, method, query or [], headers, body)
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

    def _send(self, path, method, query, headers, body):
        """The response body of one request; ApiException for an error status (both client generations)."""
        client = self.api_client
        if hasattr(client, "param_serialize"):  # kubernetes >= 33 (openapi-generator 7)
            method, url, headers, body, post = client.param_serialize(
                method=method, resource_path=path, query_params=query, header_params=headers, body=body,
                auth_settings=["BearerToken"])
            response = client.call_api(method, url, header_params=headers, body=body, post_params=post,
                                       _request_timeout=k8s.timeout_pair(self.request_timeout))
            response.read()
            if not 200 <= response.status <= 299:
                raise k8s.ApiException(http_resp=response)
            return response.data
        response = client.call_api(path, method, query_params=query, header_params=headers, body=body,
                                   auth_settings=["BearerToken"], _preload_content=False,
                                   _request_timeout=k8s.timeout_pair(self.request_timeout))
        return (response[0] if isinstance(response, tuple) else response).data

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
