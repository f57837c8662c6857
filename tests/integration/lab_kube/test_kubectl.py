"""kubectl 1.31 against the lab Kubernetes API server: apply, get with selectors, the three patch
types, scale, logs, wait, delete with cascade, server-side apply, dry runs, CRDs, and faults."""
from __future__ import annotations

import json
import time

APP = """
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo, labels: {app: web, tier: front}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo, labels: {tier: back, app: settings}}
data: {mode: lab}
"""

STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres:15}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 2Gi}}}
"""


def mutating(lab, method=None):
    return [r for r in lab.requests() if method is None or r["method"] == method]


def test_discovery_version_and_defaults(kube_lab):
    version = json.loads(kube_lab.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.27.9-eks-lab"
    kube_lab.server.set_version("1.30.2")
    version = json.loads(kube_lab.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.30.2-eks-lab"
    names = kube_lab.kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    resources = kube_lab.kubectl("api-resources", "-o", "name").stdout.split()
    for name in ("deployments.apps", "backups.velero.io", "poddisruptionbudgets.policy", "cronjobs.batch", "networkpolicies.networking.k8s.io"):
        assert name in resources
    assert kube_lab.kubectl("get", "sa", "default", "-n", "kube-system", "-o", "name").stdout.strip() == "serviceaccount/default"


def test_apply_is_idempotent_and_deployment_rolls_out(kube_lab):
    first = kube_lab.kubectl("apply", "-f", "-", stdin=APP).stdout
    assert "deployment.apps/web created" in first
    second = kube_lab.kubectl("apply", "-f", "-", stdin=APP).stdout
    assert "deployment.apps/web unchanged" in second and "configmap/settings unchanged" in second
    pods = kube_lab.kubectl_json("get", "pods", "-n", "demo", "-l", "app=web")["items"]
    assert len(pods) == 2
    replicaset = kube_lab.kubectl_json("get", "rs", "-n", "demo")["items"][0]
    pod_hash = replicaset["metadata"]["labels"]["pod-template-hash"]
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-%s-" % pod_hash)
        assert pod["metadata"]["labels"]["tier"] == "front"
        assert pod["status"]["phase"] == "Running"
        assert pod["metadata"]["ownerReferences"][0]["uid"] == replicaset["metadata"]["uid"]

    kube_lab.kubectl("apply", "-f", "-", stdin=APP.replace("nginx:1.25", "nginx:1.26"))
    kube_lab.kubectl("rollout", "status", "deploy/web", "-n", "demo", "--timeout=10s")
    sets = {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in kube_lab.kubectl_json("get", "rs", "-n", "demo")["items"]}
    assert len(sets) == 2 and sorted(sets.values()) == [0, 2]
    images = {p["spec"]["containers"][0]["image"] for p in kube_lab.kubectl_json("get", "pods", "-n", "demo")["items"]}
    assert images == {"nginx:1.26"}


def test_selectors(kube_lab):
    kube_lab.kubectl("apply", "-f", "-", stdin=APP)

    def names(*selector):
        return sorted(kube_lab.kubectl("get", "deploy,cm", "-n", "demo", "-o", "name", *selector).stdout.split())

    assert names("-l", "tier in (front,back)") == ["configmap/settings", "deployment.apps/web"]
    assert names("-l", "tier notin (front),app") == ["configmap/settings"]
    assert names("-l", "tier!=back,app==web") == ["deployment.apps/web"]
    assert names("-l", "!tier") == ["configmap/kube-root-ca.crt"]
    assert names("--field-selector", "metadata.name=web") == ["deployment.apps/web"]
    running = kube_lab.kubectl("get", "pods", "-A", "--field-selector", "status.phase=Running,metadata.namespace=demo", "-o", "name")
    assert len(running.stdout.split()) == 2


def test_patch_types_scale_logs_wait_and_request_log(kube_lab):
    kube_lab.kubectl("apply", "-f", "-", stdin=APP)
    kube_lab.server.set_logs("demo", "web-", ["starting next-build-seq-migration", "project_count=0"])
    kube_lab.kubectl("patch", "deploy", "web", "-n", "demo", "--type", "merge", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    kube_lab.kubectl("patch", "deploy", "web", "-n", "demo", "--type", "json", "-p", '[{"op":"add","path":"/metadata/labels/z","value":"w"}]')
    kube_lab.kubectl("patch", "deploy", "web", "-n", "demo", "-p",
                     '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"C","value":"3"}]}]}}}}')
    deploy = kube_lab.kubectl_json("get", "deploy", "web", "-n", "demo")
    assert deploy["metadata"]["labels"] == {"app": "web", "tier": "front", "x": "y", "z": "w"}
    assert [e["name"] for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]] == ["A", "B", "C"]
    assert deploy["metadata"]["generation"] == 2

    kube_lab.kubectl("scale", "deploy/web", "-n", "demo", "--replicas=3")
    kube_lab.kubectl("wait", "--for=condition=available", "deploy/web", "-n", "demo", "--timeout=10s")
    assert len(kube_lab.kubectl("get", "pods", "-n", "demo", "-o", "name").stdout.split()) == 3
    logs = kube_lab.kubectl("logs", "deploy/web", "-n", "demo", "--tail=1").stdout
    assert logs == "project_count=0\n"

    kube_lab.kubectl("delete", "deploy", "web", "-n", "demo")
    assert kube_lab.kubectl("get", "pods,rs", "-n", "demo", "-o", "name").stdout.strip() == ""
    records = kube_lab.requests()
    assert records and all(r["method"] in ("POST", "PUT", "PATCH", "DELETE") for r in records)
    assert all(r["service"] == "kube" for r in records)
    methods = [r["method"] for r in records]
    assert methods.count("PATCH") >= 4 and "DELETE" in methods and "POST" in methods
    assert kube_lab.kubectl("delete", "deploy", "web", "-n", "demo", check=False).returncode != 0


def test_statefulset_pvcs_survive_and_orphan_cascade(kube_lab):
    kube_lab.kubectl("apply", "-f", "-", stdin=STATEFULSET)
    pods = sorted(kube_lab.kubectl("get", "pods", "-l", "app=db", "-o", "name").stdout.split())
    assert pods == ["pod/db-0", "pod/db-1"]
    pvcs = kube_lab.kubectl_json("get", "pvc")["items"]
    assert sorted(p["metadata"]["name"] for p in pvcs) == ["data-db-0", "data-db-1"]
    assert {p["status"]["phase"] for p in pvcs} == {"Bound"}
    kube_lab.kubectl("delete", "pod", "db-1")
    assert "pod/db-1" in kube_lab.kubectl("get", "pods", "-o", "name").stdout.split()

    kube_lab.kubectl("delete", "sts", "db", "--cascade=orphan")
    assert sorted(kube_lab.kubectl("get", "pods", "-l", "app=db", "-o", "name").stdout.split()) == pods
    orphan = kube_lab.kubectl_json("get", "pod", "db-0")
    assert "ownerReferences" not in orphan["metadata"]
    kube_lab.kubectl("apply", "-f", "-", stdin=STATEFULSET)
    kube_lab.kubectl("delete", "sts", "db")
    assert kube_lab.kubectl("get", "sts", "-o", "name").stdout.strip() == ""
    assert len(kube_lab.kubectl_json("get", "pvc")["items"]) == 2


def test_server_dry_run_writes_nothing(kube_lab):
    out = kube_lab.kubectl("apply", "--dry-run=server", "-f", "-", stdin=APP.split("---", 1)[0]).stdout
    assert "(server dry run)" in out
    assert kube_lab.kubectl("get", "ns", "demo", check=False).returncode != 0
    writes = [r for r in kube_lab.requests() if "dryRun=All" not in r["path"]]
    assert writes == []
    assert any("dryRun=All" in r["path"] for r in kube_lab.requests())


def test_server_side_apply(kube_lab):
    manifest = APP.split("---")[2].replace("namespace: demo", "namespace: default")
    out = kube_lab.kubectl("apply", "--server-side", "--field-manager=lab", "-f", "-", stdin=manifest).stdout
    assert "serverside-applied" in out
    changed = manifest.replace("mode: lab", "mode: real")
    kube_lab.kubectl("apply", "--server-side", "--field-manager=lab", "-f", "-", stdin=changed)
    assert kube_lab.kubectl_json("get", "cm", "settings")["data"] == {"mode": "real"}


def test_crd_makes_its_resources_served(kube_lab):
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.lab.example.com}
spec:
  group: lab.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
    kube_lab.kubectl("apply", "-f", "-", stdin=crd)
    kube_lab.kubectl("wait", "--for=condition=established", "crd/widgets.lab.example.com", "--timeout=5s")
    widget = "apiVersion: lab.example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n"
    kube_lab.kubectl("apply", "-f", "-", stdin=widget)
    kube_lab.kubectl("apply", "-f", "-", stdin=widget.replace("size: 3", "size: 4"))
    assert kube_lab.kubectl_json("get", "wd", "w1")["spec"] == {"size": 4}
    kube_lab.server.create({"apiVersion": "velero.io/v1", "kind": "Backup",
                            "metadata": {"name": "nightly", "namespace": "velero", "creationTimestamp": "2024-01-01T00:00:00Z"},
                            "status": {"phase": "Completed"}})
    backup = kube_lab.kubectl_json("get", "backups.velero.io", "nightly", "-n", "velero")
    assert backup["status"]["phase"] == "Completed" and backup["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"
    kube_lab.kubectl("delete", "crd", "widgets.lab.example.com")
    assert kube_lab.kubectl("get", "widgets", check=False).returncode != 0


def test_injected_fault_is_answered_and_retry_succeeds(kube_lab):
    kube_lab.kubectl("apply", "-f", "-", stdin=APP)
    kube_lab.faults.add("kube", "PATCH", r"/deployments/web", nth=2, status=500, message="lab: etcd is on fire")
    kube_lab.kubectl("label", "deploy", "web", "-n", "demo", "round=1")
    failed = kube_lab.kubectl("label", "deploy", "web", "-n", "demo", "round=2", "--overwrite", check=False)
    assert failed.returncode != 0 and "etcd is on fire" in failed.stderr
    assert kube_lab.kubectl_json("get", "deploy", "web", "-n", "demo")["metadata"]["labels"]["round"] == "1"
    kube_lab.kubectl("label", "deploy", "web", "-n", "demo", "round=2", "--overwrite")
    assert kube_lab.kubectl_json("get", "deploy", "web", "-n", "demo")["metadata"]["labels"]["round"] == "2"
    statuses = [r["status"] for r in kube_lab.requests() if r["method"] == "PATCH"]
    assert statuses == [200, 500, 200]


def test_namespace_terminates_then_goes_with_its_content(kube_lab):
    kube_lab.kubectl("apply", "-f", "-", stdin=APP)
    # The namespace comes first in the file: like on a real cluster, its content can still be deleted.
    out = kube_lab.kubectl("delete", "-f", "-", stdin=APP).stdout
    assert 'namespace "demo" deleted' in out and 'deployment.apps "web" deleted' in out
    assert kube_lab.kubectl("get", "ns", "demo", check=False).returncode != 0
    assert kube_lab.server.list("v1", "Pod", "demo") == []
    protected = kube_lab.kubectl("delete", "ns", "kube-system", check=False)
    assert protected.returncode != 0 and "may not be deleted" in protected.stderr

    kube_lab.server.store.namespace_grace = 30
    kube_lab.kubectl("create", "ns", "slow")
    kube_lab.kubectl("delete", "ns", "slow", "--wait=false")
    assert kube_lab.kubectl_json("get", "ns", "slow")["status"]["phase"] == "Terminating"
    refused = kube_lab.kubectl("create", "configmap", "late", "-n", "slow", check=False)
    assert refused.returncode != 0 and "being terminated" in refused.stderr


def test_exec_printenv_and_scripted_commands(kube_lab):
    kube_lab.kubectl("create", "secret", "generic", "postgresql", "--from-literal=password=s3cr3t")
    kube_lab.kubectl("create", "deploy", "frontend", "--image=circleci/frontend:3.4")
    kube_lab.kubectl("set", "env", "deploy/frontend", "POSTGRES_HOST=postgresql")
    kube_lab.kubectl("set", "env", "deploy/frontend", "--from=secret/postgresql", "--prefix=POSTGRES_")
    pod = kube_lab.kubectl("get", "pod", "-l", "app=frontend", "-o", "name").stdout.split()[-1]
    env = kube_lab.kubectl("exec", pod, "-c", "frontend", "--", "printenv").stdout.splitlines()
    assert "POSTGRES_HOST=postgresql" in env and "POSTGRES_PASSWORD=s3cr3t" in env
    kube_lab.server.set_exec("default", "frontend-", "psql -c", stdout="ok\n")
    assert kube_lab.kubectl("exec", pod, "--", "psql", "-c", "select 1").stdout == "ok\n"
    kube_lab.server.set_exec("default", "frontend-", "migrate", stderr="boom\n", exit_code=3)
    failed = kube_lab.kubectl("exec", pod, "--", "migrate", "--all", check=False)
    assert failed.returncode == 3 and "boom" in failed.stderr
    assert kube_lab.kubectl("exec", pod, "--", "sh", "-c", "true", check=False).returncode == 127
    # exec arrives as a WebSocket GET but is the API's "create" verb: the request log keeps it as a write.
    execs = [r for r in kube_lab.requests() if "/exec?" in r["path"]]
    assert len(execs) == 4 and {r["method"] for r in execs} == {"POST"} and "command=printenv" in execs[0]["path"]


def test_exec_answers_no_earlier_than_a_real_kubelet(kube_lab):
    """kubectl's WebSocket executor registers its streams after it starts reading (client-go readDemuxLoop) and drops
    frames of a stream it has not registered yet: a stand-in that answers at once loses kubectl's exit status under
    load (seen: exit 1, "Unknown stream id 3, discarding message", for a command that exits 127). A real exec answers
    after the kubelet started the process; the stand-in waits as long before its first frame."""
    import websocket  # pylint: disable=import-outside-toplevel
    from tests.lab.kube.server import EXEC_START_SECONDS  # pylint: disable=import-outside-toplevel
    kube_lab.kubectl("create", "deploy", "frontend", "--image=circleci/frontend:3.4")
    pod = kube_lab.kubectl("get", "pod", "-l", "app=frontend", "-o", "name").stdout.split()[-1].split("/")[1]
    url = kube_lab.url.replace("http://", "ws://") + (
        "/api/v1/namespaces/default/pods/%s/exec?command=sh&command=-c&command=true&stdout=true&stderr=true" % pod)
    socket = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io"], timeout=30)
    try:
        upgraded = time.monotonic()
        first = socket.recv()
        waited = time.monotonic() - upgraded
        frames = [first]
        while True:
            try:
                frame = socket.recv()
            except websocket.WebSocketConnectionClosedException:
                break
            if not frame:
                break
            frames.append(frame)
    finally:
        socket.close()
    assert EXEC_START_SECONDS >= 0.05, "a real kubelet takes tens of milliseconds to start the process"
    assert waited >= EXEC_START_SECONDS * 0.9, waited
    status = json.loads(frames[-1][1:])
    assert frames[-1][:1] == b"\x03" and status["details"]["causes"][0]["message"] == "127", frames


def test_kots_exporter_annotates_every_kind(kube_lab):
    for manifest in ("serviceaccount/app", "configmap/app", "secret/app", "role/app", "rolebinding/app", "service/app",
                     "networkpolicy/app", "pvc/app", "pdb/app"):
        kind, name = manifest.split("/")
        kube_lab.server.create({
            "apiVersion": {"role": "rbac.authorization.k8s.io/v1", "rolebinding": "rbac.authorization.k8s.io/v1",
                           "networkpolicy": "networking.k8s.io/v1", "pdb": "policy/v1"}.get(kind, "v1"),
            "kind": {"serviceaccount": "ServiceAccount", "configmap": "ConfigMap", "secret": "Secret", "role": "Role",
                     "rolebinding": "RoleBinding", "service": "Service", "networkpolicy": "NetworkPolicy",
                     "pvc": "PersistentVolumeClaim", "pdb": "PodDisruptionBudget"}[kind],
            "metadata": {"name": name, "namespace": "circleci", "labels": {"kots.io/app-slug": "circleci", "kots.io/kotsadm": "true"}}})
    kube_lab.kubectl("create", "job", "inject-bottoken-x1", "--image=busybox", "-n", "circleci")
    kube_lab.kubectl("create", "cronjob", "cleanup", "--image=busybox", "--schedule=0 * * * *", "-n", "circleci")
    kube_lab.kubectl("create", "deploy", "api", "--image=api:1", "-n", "circleci")
    # The script runs one kubectl per kind; one call for all of them asks the server the same (and is faster).
    kinds = ",".join("sa cm jobs ds secret role RoleBinding svc cj deploy sts netpol pvc pdb".split())
    kube_lab.kubectl("-n", "circleci", "annotate", kinds, "--all", "meta.helm.sh/release-name=circleci-server",
                     "meta.helm.sh/release-namespace=circleci", "--overwrite")
    kube_lab.kubectl("-n", "circleci", "label", kinds, "--all", "app.kubernetes.io/managed-by=Helm", "--overwrite")
    kube_lab.kubectl("-n", "circleci", "label", kinds, "--all", "kots.io/app-slug-")
    items = kube_lab.kubectl_json("-n", "circleci", "get", kinds)["items"]
    assert len(items) == 14
    for item in items:
        assert item["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server", item["metadata"]["name"]
        assert item["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert "kots.io/app-slug" not in item["metadata"]["labels"]
    kube_lab.kubectl("-n", "circleci", "delete", "pvc,cm", "-l", "kots.io/kotsadm=true")
    assert kube_lab.kubectl("-n", "circleci", "get", "pvc", "-o", "name").stdout.strip() == ""
    assert kube_lab.kubectl("-n", "circleci", "get", "jobs", "-o", "name").stdout.split() == ["job.batch/inject-bottoken-x1"]
