"""The kubernetes Python client against the lab Kubernetes API server: CRUD, resourceVersion
conflicts, label selectors, watch (with the initial-events bookmark), subresources, error bodies."""
from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException


def configmap(name, labels=None, data=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or {}), data=data or {"k": "v"})


def test_crud_and_conflict(kube_client):
    core = client.CoreV1Api(kube_client)
    created = core.create_namespaced_config_map("default", configmap("one", {"app": "a"}))
    assert created.metadata.uid and created.metadata.resource_version
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("default", configmap("one"))
    assert exc.value.status == 409 and '"reason":"AlreadyExists"' in exc.value.body.replace(" ", "")

    stale = core.read_namespaced_config_map("one", "default")
    fresh = core.read_namespaced_config_map("one", "default")
    fresh.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("one", "default", fresh)
    assert int(updated.metadata.resource_version) > int(stale.metadata.resource_version)
    stale.data = {"k": "lost update"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("one", "default", stale)
    assert exc.value.status == 409

    same = core.patch_namespaced_config_map("one", "default", {"data": {"k": "v2"}})
    assert same.metadata.resource_version == updated.metadata.resource_version, "a no-op patch must not bump resourceVersion"

    generated = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9

    core.delete_namespaced_config_map("one", "default")
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_config_map("one", "default")
    assert exc.value.status == 404
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("missing-ns", configmap("x"))
    assert exc.value.status == 404


def test_label_selectors_and_secret_string_data(kube_client):
    core = client.CoreV1Api(kube_client)
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db", "env": "prod"}), ("c", {"tier": "web"})):
        core.create_namespaced_config_map("default", configmap(name, labels))

    def names(selector):
        return sorted(i.metadata.name for i in core.list_namespaced_config_map("default", label_selector=selector).items)

    assert names("tier=web") == ["a", "c"]
    assert names("tier in (web, db),env") == ["a", "b"]
    assert names("env,tier notin (db)") == ["a"]
    assert names("!env,tier") == ["c"]
    assert names("tier!=web,env==prod") == ["b"]
    listing = core.list_namespaced_config_map("default")
    assert int(listing.metadata.resource_version) > 0

    secret = core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"pw": "hunter2"}))
    assert secret.data == {"pw": "aHVudGVyMg=="} and secret.string_data is None and secret.type == "Opaque"


def test_watch_with_initial_events_bookmark(kube_client):
    core = client.CoreV1Api(kube_client)
    core.create_namespaced_config_map("default", configmap("before"))
    events = []
    done = threading.Event()

    def consume():
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_config_map, "default", send_initial_events=True,
                                   resource_version_match="NotOlderThan", allow_watch_bookmarks=True, timeout_seconds=5):
            events.append(event)
            if event["type"] == "ADDED" and event["object"].metadata.name == "after":
                stream.stop()
        done.set()

    thread = threading.Thread(target=consume)
    thread.start()
    for _attempt in range(100):
        if any(e["type"] == "BOOKMARK" for e in events):
            break
        done.wait(0.05)
    core.create_namespaced_config_map("default", configmap("after"))
    thread.join(10)
    kinds = [(e["type"], e["raw_object"]["metadata"].get("name")) for e in events]
    bookmark = kinds.index(("BOOKMARK", None))
    assert ("ADDED", "before") in kinds[:bookmark] and ("ADDED", "kube-root-ca.crt") in kinds[:bookmark]
    assert kinds[bookmark + 1:] == [("ADDED", "after")]
    assert events[bookmark]["raw_object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_watch_from_resource_version_and_field_selector(kube_client):
    core = client.CoreV1Api(kube_client)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", configmap("x"))
    core.create_namespaced_config_map("default", configmap("y"))
    core.delete_namespaced_config_map("x", "default")
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=rv, field_selector="metadata.name=x", timeout_seconds=1)]
    assert seen == [("ADDED", "x"), ("DELETED", "x")]


def test_subresources_and_dynamic_client(kube_client):
    apps = client.AppsV1Api(kube_client)
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}},
                     "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "api", "image": "api:1"}]}}}}
    apps.create_namespaced_deployment("default", body)
    scale = apps.read_namespaced_deployment_scale("api", "default")
    assert scale.spec.replicas == 1 and scale.status.selector == "app=api"
    apps.patch_namespaced_deployment_scale("api", "default", {"spec": {"replicas": 3}})
    deploy = apps.read_namespaced_deployment("api", "default")
    assert deploy.status.ready_replicas == 3 and deploy.status.observed_generation == deploy.metadata.generation == 2
    # The main resource ignores status; the controller owns it and corrects writes to /status.
    apps.patch_namespaced_deployment("api", "default", {"status": {"replicas": 99}})
    assert apps.read_namespaced_deployment_status("api", "default").status.replicas == 3

    dyn = dynamic.DynamicClient(kube_client)
    jobs = dyn.resources.get(api_version="batch/v1", kind="Job")
    jobs.create(namespace="default", body={"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                                           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                                          "containers": [{"name": "c", "image": "busybox"}]}}}})
    job = jobs.get(name="once", namespace="default")
    assert job.status.succeeded == 1
    pods = dyn.resources.get(api_version="v1", kind="Pod").get(namespace="default", label_selector="job-name=once")
    assert [p.status.phase for p in pods.items] == ["Succeeded"]
    daemonsets = dyn.resources.get(api_version="apps/v1", kind="DaemonSet")
    daemonsets.create(namespace="default", body={"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                                                 "spec": {"selector": {"matchLabels": {"app": "agent"}},
                                                          "template": {"metadata": {"labels": {"app": "agent"}},
                                                                       "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}})
    agent = daemonsets.get(name="agent", namespace="default")
    assert agent.status.desiredNumberScheduled == agent.status.numberReady == 3
    nodes = sorted(p.spec.nodeName for p in dyn.resources.get(api_version="v1", kind="Pod").get(
        namespace="default", label_selector="app=agent").items)
    assert nodes == ["lab-node-1", "lab-node-2", "lab-node-3"]
    backups = dyn.resources.get(api_version="velero.io/v1", kind="Backup")
    assert backups.get(namespace="velero").items == []


def test_protobuf_bodies(kube_lab):
    from tests.lab.kube.protobuf import CONTENT_TYPE, encode_object  # pylint: disable=import-outside-toplevel
    import urllib3  # pylint: disable=import-outside-toplevel

    http = urllib3.PoolManager()
    url = kube_lab.url + "/api/v1/namespaces/default/secrets"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sh.helm.release.v1.rel.v1", "labels": {"owner": "helm"}},
              "type": "helm.sh/release.v1", "data": {"release": "SDRzSUFBQUFBQUFBLw=="}}
    created = http.request("POST", url, body=encode_object(secret), headers={"Content-Type": CONTENT_TYPE})
    assert created.status == 201, created.data
    stored = json.loads(created.data)
    assert stored["data"] == secret["data"] and stored["metadata"]["labels"] == {"owner": "helm"}
    stale = dict(secret, metadata=dict(secret["metadata"], resourceVersion="1"))
    conflict = http.request("PUT", url + "/sh.helm.release.v1.rel.v1", body=encode_object(stale), headers={"Content-Type": CONTENT_TYPE})
    assert conflict.status == 409 and json.loads(conflict.data)["reason"] == "Conflict"
    garbage = http.request("POST", url, body=b"k8s\x00\x0a\x03junk", headers={"Content-Type": CONTENT_TYPE})
    assert garbage.status == 415 and json.loads(garbage.data)["kind"] == "Status"
    assert [r["status"] for r in kube_lab.requests()] == [201, 409, 415]
