"""The strategic-merge directives ($patch, $setElementOrder, $retainKeys, $deleteFromPrimitiveList)
and the other patch types, sent as raw HTTP PATCH requests to the lab Kubernetes API server."""
from __future__ import annotations

import json

import urllib3

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "default", "finalizers": ["a.lab/x", "a.lab/y"]},
    "spec": {"selector": {"matchLabels": {"app": "api"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
             "template": {"metadata": {"labels": {"app": "api"}},
                          "spec": {"containers": [
                              {"name": "api", "image": "api:1", "ports": [{"containerPort": 80}, {"containerPort": 81}],
                               "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                               "volumeMounts": [{"name": "v", "mountPath": "/data"}]},
                              {"name": "sidecar", "image": "side:1"}]}}}}


def _patch(lab, content_type, body, path="/apis/apps/v1/namespaces/default/deployments/api", query=""):
    response = urllib3.PoolManager().request("PATCH", lab.url + path + query, body=json.dumps(body) if not isinstance(body, str) else body,
                                             headers={"Content-Type": content_type})
    return response.status, json.loads(response.data)


def test_strategic_merge_directives(kube_lab):
    kube_lab.server.create(DEPLOYMENT)
    smp = "application/strategic-merge-patch+json"
    status, result = _patch(kube_lab, smp, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "api"}],
        "containers": [{"name": "api", "env": [{"name": "B", "$patch": "delete"}, {"name": "C", "value": "3"}],
                        "ports": [{"containerPort": 81, "name": "metrics"}]}]}}}})
    assert status == 200
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "api"]
    assert containers[1]["env"] == [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]
    assert containers[1]["ports"] == [{"containerPort": 80}, {"containerPort": 81, "name": "metrics"}]
    assert containers[1]["volumeMounts"] == [{"name": "v", "mountPath": "/data"}]

    status, result = _patch(kube_lab, smp, {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a.lab/x"]},
        "spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                 "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "only:1"}]}}}})
    assert status == 200
    assert result["metadata"]["finalizers"] == ["a.lab/y"]
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "only:1"}]

    status, result = _patch(kube_lab, smp, {"spec": {"template": {"metadata": {"$patch": "replace", "labels": {"app": "api", "v": "2"}}}}})
    assert status == 200 and result["spec"]["template"]["metadata"] == {"labels": {"app": "api", "v": "2"}}


def test_other_patch_types_and_errors(kube_lab):
    kube_lab.server.create(DEPLOYMENT)
    status, result = _patch(kube_lab, "application/merge-patch+json", {"metadata": {"labels": {"a": "b"}, "finalizers": None}})
    assert status == 200 and result["metadata"]["labels"] == {"a": "b"} and "finalizers" not in result["metadata"]
    status, result = _patch(kube_lab, "application/json-patch+json", [{"op": "replace", "path": "/spec/replicas", "value": 4}])
    assert status == 200 and result["spec"]["replicas"] == 4 and result["status"]["readyReplicas"] == 4
    status, result = _patch(kube_lab, "application/json-patch+json", [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert status == 422 and result["kind"] == "Status"
    status, result = _patch(kube_lab, "application/apply-patch+yaml", "metadata: {labels: {c: d}}")
    assert status == 422 and "fieldManager" in result["message"]
    status, result = _patch(kube_lab, "application/apply-patch+yaml",
                            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fresh}\ndata: {k: v}\n",
                            path="/api/v1/namespaces/default/configmaps/fresh", query="?fieldManager=lab&force=true")
    assert status == 201 and result["data"] == {"k": "v"}
    status, result = _patch(kube_lab, "application/strategic-merge-patch+json", {"spec": {}},
                            path="/apis/velero.io/v1/namespaces/default/backups/none")
    assert status == 404
    kube_lab.server.create({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "b", "namespace": "velero"}})
    status, result = _patch(kube_lab, "application/strategic-merge-patch+json", {"spec": {"ttl": "1h"}},
                            path="/apis/velero.io/v1/namespaces/velero/backups/b")
    assert status == 415, "custom resources refuse strategic merge patches, like the real server"
    status, result = _patch(kube_lab, "application/merge-patch+json", {"spec": {"ttl": "1h"}},
                            path="/apis/velero.io/v1/namespaces/velero/backups/b", query="?dryRun=All")
    assert status == 200 and result["spec"] == {"ttl": "1h"}
    assert kube_lab.server.get("velero.io/v1", "Backup", "velero", "b").get("spec") is None
