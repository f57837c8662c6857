# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for module_utils.k8s.K8sReader, for unit tests (no HTTP).

    reader = FakeReader([secret("ns", "tink", {"keyset": "{}"}), ...], kubernetes_version="v1.27.9")
"""

from __future__ import annotations

import base64
import copy
import gzip
import json

from ansible_collections.circleci.server.plugins.module_utils.k8s import K8sError

_CORE_KINDS = {"Namespace", "Node", "Secret", "ConfigMap", "Pod", "Service", "ServiceAccount",
               "PersistentVolumeClaim", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def _matches(labels, selector):
    if not selector:
        return True
    for term in selector.split(","):
        key, _sep, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class FakeReader:
    """Objects are plain dicts with kind (or apiVersion/kind for custom objects) and metadata."""

    def __init__(self, objects=(), kubernetes_version="v1.27.9", error=None):
        self.objects = [copy.deepcopy(o) for o in objects]
        self.kubernetes_version = kubernetes_version
        self.error = error  # a K8sError message every call raises, to fake an unreachable cluster
        self.calls = []

    def _check(self, call):
        self.calls.append(call)
        if self.error:
            raise K8sError(self.error)

    def version(self):
        self._check(("version",))
        major, minor = self.kubernetes_version.lstrip("v").split(".")[:2]
        return {"gitVersion": self.kubernetes_version, "major": major, "minor": minor}

    def _select(self, kind, namespace, selector, api_version=None):
        out = []
        for obj in self.objects:
            meta = obj.get("metadata") or {}
            if obj.get("kind") != kind or (api_version and obj.get("apiVersion") != api_version):
                continue
            if namespace and meta.get("namespace") != namespace:
                continue
            if _matches(meta.get("labels") or {}, selector):
                out.append(copy.deepcopy(obj))
        return out

    def get(self, kind, name, namespace=None):
        self._check(("get", kind, name, namespace))
        assert kind in _CORE_KINDS, kind
        for obj in self._select(kind, namespace, None):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def list(self, kind, namespace=None, label_selector=None):
        self._check(("list", kind, namespace, label_selector))
        assert kind in _CORE_KINDS, kind
        return self._select(kind, namespace, label_selector)

    def get_custom(self, group, version, plural, name, namespace):
        self._check(("get_custom", group, version, plural, name, namespace))
        for obj in self.list_custom(group, version, plural, namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None

    def list_custom(self, group, version, plural, namespace, label_selector=None):
        self._check(("list_custom", group, version, plural, namespace, label_selector))
        kind = {"backups": "Backup"}.get(plural, plural)
        return self._select(kind, namespace, label_selector, api_version="%s/%s" % (group, version))


def obj(kind, namespace, name, labels=None, **fields):
    result = {"kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}
    result.update(fields)
    return result


def secret(namespace, name, data, labels=None, secret_type="Opaque"):
    """A Secret whose data values (str or bytes) are base64-encoded as the API returns them."""
    encoded = {}
    for key, value in data.items():
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        encoded[key] = base64.b64encode(raw).decode("ascii")
    return obj("Secret", namespace, name, labels, type=secret_type, data=encoded)


def helm_release_secret(namespace, release, revision, chart_version, values, status="deployed"):
    """helm 3's storage Secret for one revision: data.release = b64(b64(gzip(json)))."""
    record = {"name": release, "namespace": namespace, "version": revision, "info": {"status": status},
              "chart": {"metadata": {"name": "circleci-server", "version": chart_version}}, "config": values}
    payload = base64.b64encode(gzip.compress(json.dumps(record).encode("utf-8")))
    labels = {"owner": "helm", "name": release, "status": status, "version": str(revision)}
    return secret(namespace, "sh.helm.release.v1.%s.v%d" % (release, revision), {"release": payload},
                  labels=labels, secret_type="helm.sh/release.v1")
