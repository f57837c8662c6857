# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""helm_adopt and kots_cleanup against an in-memory namespace: what they change, that check mode and a
re-run change nothing, and that the 4.0 chart's postgresql objects are never deleted."""
from __future__ import annotations

import copy
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.module_utils import k8s_objects
from ansible_collections.circleci.server.plugins.modules import helm_adopt, kots_cleanup
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import helm_release_secret

NS = "circleci-server"
KOTS = {"kots.io/app-slug": "circleci-server", "kots.io/backup": "velero"}
KOTSADM = {"kots.io/kotsadm": "true", "kots.io/backup": "velero"}


def obj(name, labels=None, annotations=None):
    return {"metadata": {"name": name, "namespace": NS, "labels": dict(labels or {}), "annotations": dict(annotations or {})}}


def selected(labels, selector):
    """key=value and key!=value terms, comma-separated (what these tests use)."""
    for term in (selector or "").split(","):
        if "!=" in term:
            key, value = term.split("!=")
            if labels.get(key) == value:
                return False
        elif term:
            key, _sep, value = term.partition("=")
            if labels.get(key) != value:
                return False
    return True


class FakeObjects:
    """An in-memory namespace with ObjectClient's interface; records every request that writes."""

    def __init__(self, objects, namespaces=(NS,)):
        self.objects = {kind: {o["metadata"]["name"]: copy.deepcopy(o) for o in items} for kind, items in objects.items()}
        self.namespaces = set(namespaces)
        self.writes = []
        self.reads = []

    resolve = k8s_objects.ObjectClient.resolve
    namespaced = k8s_objects.ObjectClient.namespaced
    resolved = {}

    def _discover(self, kind):
        raise k8s_objects.k8s.K8sError("The API server serves no kind %s." % kind)

    def namespace_exists(self, namespace):
        self.reads.append(("namespace", namespace))
        return namespace in self.namespaces

    def list(self, kind, namespace, label_selector=None):
        self.reads.append(("list", kind, label_selector))
        assert namespace == NS
        items = [o for o in self.objects.get(kind, {}).values() if selected(o["metadata"].get("labels") or {}, label_selector)]
        return copy.deepcopy(items)

    def get(self, kind, namespace, name):
        found = self.objects.get(kind, {}).get(name)
        return copy.deepcopy(found) if found else None

    def merge_patch(self, kind, namespace, name, patch):
        self.writes.append(("PATCH", kind, name))
        meta = self.objects[kind][name]["metadata"]
        for part, values in patch["metadata"].items():
            for key, value in values.items():
                if value is None:
                    meta[part].pop(key, None)
                else:
                    meta[part][key] = value

    def delete(self, kind, namespace, name, propagation="Background"):
        self.writes.append(("DELETE", kind, name, propagation))
        del self.objects[kind][name]


def release_record(chart_version="3.4.8", revision=1):
    return helm_release_secret(NS, "circleci-server", revision, chart_version, {"domainName": "ci.example.com"})


def namespace(chart_version="3.4.8"):
    return FakeObjects({
        "Service": [obj("vm-service", KOTS, {"kots.io/app-slug": "circleci-server"}), obj("kotsadm", KOTSADM)],
        "Secret": [obj("postgresql", KOTS), obj("kotsadm-sessions"), release_record(chart_version)],
        "StatefulSet": [obj("postgresql", KOTS), obj("kotsadm-minio", KOTSADM)],
        "PersistentVolumeClaim": [obj("data-postgresql-0", KOTS), obj("kotsadm-minio-kotsadm-minio-0", KOTSADM)],
        "Job": [obj("inject-bottoken-7f3kq", KOTS)],
        "Deployment": [obj("frontend", dict(KOTS, **{"app.kubernetes.io/managed-by": "Helm"}),
                           {"meta.helm.sh/release-name": "circleci-server", "meta.helm.sh/release-namespace": NS})],
    })


def run(module, capsys, monkeypatch, fake, **args):
    monkeypatch.setattr(k8s_objects.ObjectClient, "from_params", classmethod(lambda cls, params: fake))
    with patch_module_args(dict({"namespace": NS}, **args)):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_adoption_patch_states():
    assert k8s_objects.adoption_patch(obj("a"), "circleci-server", NS)[0] == "adopt"
    owned = obj("b", {"app.kubernetes.io/managed-by": "Helm"},
                {"meta.helm.sh/release-name": "circleci-server", "meta.helm.sh/release-namespace": NS})
    assert k8s_objects.adoption_patch(owned, "circleci-server", NS) == ("adopted", None)
    other = obj("c", {}, {"meta.helm.sh/release-name": "other"})
    assert k8s_objects.adoption_patch(other, "circleci-server", NS) == ("conflict", None)


def test_helm_adopt_check_mode_then_apply_then_rerun(capsys, monkeypatch):
    fake = namespace()
    code, result = run(helm_adopt, capsys, monkeypatch, fake, _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0 and result["changed"] and fake.writes == []
    assert "Service/vm-service" in result["adopted"] and "Deployment/frontend" not in result["adopted"]
    assert not [name for name in result["adopted"] if name.startswith("Secret/sh.helm.release")]  # helm's records untouched
    assert result["diff"]["after"]["Service/vm-service"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}

    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 0 and result["changed"] and len(fake.writes) == len(result["adopted"])
    assert fake.objects["Service"]["vm-service"]["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"

    fake.writes.clear()
    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 0 and not result["changed"] and fake.writes == []


def test_helm_adopt_stops_on_an_object_of_another_release(capsys, monkeypatch):
    fake = FakeObjects({"Service": [obj("x", {}, {"meta.helm.sh/release-name": "other", "meta.helm.sh/release-namespace": NS})]})
    code, result = run(helm_adopt, capsys, monkeypatch, fake)
    assert code == 1 and "another Helm release" in result["msg"] and fake.writes == []


def test_kots_cleanup_check_mode_then_apply_then_rerun(capsys, monkeypatch):
    fake = namespace()
    code, plan = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True, _ansible_check_mode=True)
    assert code == 0 and plan["changed"] and fake.writes == []
    assert plan["deleted"] == ["Service/kotsadm", "StatefulSet/kotsadm-minio", "PersistentVolumeClaim/kotsadm-minio-kotsadm-minio-0",
                               "Secret/kotsadm-sessions", "Job/inject-bottoken-7f3kq", "StatefulSet/postgresql", "Secret/postgresql"]
    assert plan["orphaned"] == ["StatefulSet/postgresql"]
    assert "PersistentVolumeClaim/data-postgresql-0" in plan["cleaned"]  # the data volume is kept, only unlabelled

    code, result = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True)
    assert code == 0 and result["deleted"] == plan["deleted"]
    assert ("DELETE", "StatefulSet", "postgresql", "Orphan") in fake.writes
    assert fake.objects["PersistentVolumeClaim"]["data-postgresql-0"]["metadata"]["labels"] == {}
    assert "kots.io/app-slug" not in fake.objects["Service"]["vm-service"]["metadata"]["annotations"]

    # postgresql objects without KOTS's label (not what KOTS deployed) are left alone by a re-run.
    fake.objects["StatefulSet"]["postgresql"] = obj("postgresql", {"app.kubernetes.io/managed-by": "Helm"})
    fake.objects["Secret"]["postgresql"] = obj("postgresql", {"app.kubernetes.io/managed-by": "Helm"})
    fake.writes.clear()
    code, result = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=True)
    assert code == 0 and not result["changed"] and fake.writes == []


def test_kots_cleanup_keeps_an_external_postgres_alone(capsys, monkeypatch):
    fake = namespace()
    code, plan = run(kots_cleanup, capsys, monkeypatch, fake, postgresql_internal=False, _ansible_check_mode=True)
    assert code == 0 and "StatefulSet/postgresql" not in plan["deleted"] and "Secret/postgresql" not in plan["deleted"]


def test_helm_adopt_takes_any_kind_the_chart_owns_and_only_this_installs_cluster_scoped_objects(capsys, monkeypatch):
    fake = namespace()
    fake.objects["Ingress"] = {"circleci": obj("circleci", KOTS)}
    fake.objects["ClusterRole"] = {
        "circleci-server-nomad": obj("circleci-server-nomad", KOTS),
        "cluster-admin": obj("cluster-admin", {"kubernetes.io/bootstrapping": "rbac-defaults"}),
    }
    code, result = run(helm_adopt, capsys, monkeypatch, fake, kinds=["Ingress", "ClusterRole"])
    assert code == 0, result
    assert result["adopted"] == ["Ingress/circleci", "ClusterRole/circleci-server-nomad"]
    assert fake.objects["ClusterRole"]["cluster-admin"]["metadata"]["annotations"] == {}
    assert fake.objects["ClusterRole"]["circleci-server-nomad"]["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == NS


def test_object_paths_of_namespaced_cluster_scoped_and_discovered_kinds():
    class Discovering(k8s_objects.ObjectClient):
        def _call(self, what, path, method, body=None, query=None, content_type=None):
            return {"/apis": {"groups": [{"preferredVersion": {"groupVersion": "monitoring.coreos.com/v1"}}]},
                    "/api/v1": {"resources": [{"name": "pods", "kind": "Pod", "namespaced": True}]},
                    "/apis/monitoring.coreos.com/v1": {"resources": [
                        {"name": "servicemonitors", "kind": "ServiceMonitor", "namespaced": True},
                        {"name": "servicemonitors/status", "kind": "ServiceMonitor", "namespaced": True}]}}[path]

    client = Discovering(None)
    assert client.path("Deployment", NS, "frontend") == "/apis/apps/v1/namespaces/%s/deployments/frontend" % NS
    assert client.path("ClusterRole", NS, "x") == "/apis/rbac.authorization.k8s.io/v1/clusterroles/x"
    assert client.path("ServiceMonitor", NS) == "/apis/monitoring.coreos.com/v1/namespaces/%s/servicemonitors" % NS
