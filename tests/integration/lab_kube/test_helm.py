"""helm 3 against the lab Kubernetes API server: install --wait, upgrade with a pre-upgrade hook Job,
history, get values, rollback, uninstall; release Secrets and PVCs behave like on a real cluster."""
from __future__ import annotations

import json

from .conftest import chart_path


def test_helm_lifecycle(kube_lab):
    chart = chart_path()
    kube_lab.helm("install", "rel", chart, "-n", "apps", "--create-namespace", "--wait", "--timeout", "30s")
    releases = json.loads(kube_lab.helm("list", "-A", "-o", "json").stdout)
    assert [(r["name"], r["namespace"], r["status"], r["chart"]) for r in releases] == [("rel", "apps", "deployed", "labapp-0.1.0")]
    proxy = kube_lab.kubectl_json("get", "svc", "rel-proxy", "-n", "apps")
    assert proxy["status"]["loadBalancer"]["ingress"][0]["hostname"].endswith(".us-east-1.elb.amazonaws.com")
    storage = kube_lab.kubectl_json("get", "secret", "-n", "apps", "-l", "owner=helm,name=rel")["items"]
    assert [s["metadata"]["labels"]["version"] for s in storage] == ["1"]

    kube_lab.helm("upgrade", "rel", chart, "-n", "apps", "--set", "greeting=bye", "--wait", "--wait-for-jobs", "--timeout", "30s")
    hook = kube_lab.kubectl_json("get", "job", "rel-migrate", "-n", "apps")
    assert [c["type"] for c in hook["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    values = json.loads(kube_lab.helm("get", "values", "rel", "-n", "apps", "-o", "json").stdout)
    assert values == {"greeting": "bye"}
    env = kube_lab.kubectl_json("get", "deploy", "rel-web", "-n", "apps")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "GREETING", "value": "bye"}

    kube_lab.helm("rollback", "rel", "1", "-n", "apps", "--wait", "--timeout", "30s")
    history = json.loads(kube_lab.helm("history", "rel", "-n", "apps", "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
    assert json.loads(kube_lab.helm("get", "values", "rel", "-n", "apps", "-o", "json").stdout) in ({}, None)
    active = [rs for rs in kube_lab.kubectl_json("get", "rs", "-n", "apps")["items"] if rs["spec"]["replicas"]]
    assert len(active) == 1 and active[0]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "hello"

    kube_lab.helm("uninstall", "rel", "-n", "apps", "--wait", "--timeout", "30s")
    assert json.loads(kube_lab.helm("list", "-A", "-o", "json").stdout) == []
    assert kube_lab.kubectl("get", "deploy,sts,svc", "-n", "apps", "-o", "name").stdout.strip() == ""
    # Like on a real cluster, the StatefulSet's claims outlive the release.
    assert [p["metadata"]["name"] for p in kube_lab.kubectl_json("get", "pvc", "-n", "apps")["items"]] == ["data-rel-db-0"]


def test_helm_wait_sees_gke_style_load_balancer_and_new_version(kube_lab):
    kube_lab.server.controllers.load_balancer = "ip"
    kube_lab.server.set_version("1.30.2")
    kube_lab.helm("install", "rel", chart_path(), "-n", "default", "--set", "hookJob=false", "--wait", "--timeout", "20s")
    ingress = kube_lab.kubectl_json("get", "svc", "rel-proxy")["status"]["loadBalancer"]["ingress"][0]
    assert ingress["ip"].startswith("34.")
    assert json.loads(kube_lab.kubectl("version", "-o", "json").stdout)["serverVersion"]["minor"] == "30+"


def test_scripted_pod_states_fail_helm_waits_and_heal(kube_lab):
    chart = chart_path()
    kube_lab.helm("install", "rel", chart, "--wait", "--timeout", "20s")
    kube_lab.server.set_pod_state("default", "rel-web-", "CrashLoopBackOff")
    deploy = kube_lab.kubectl_json("get", "deploy", "rel-web")
    assert deploy["status"].get("readyReplicas") is None and deploy["status"]["unavailableReplicas"] == 2
    assert {c["type"]: c["status"] for c in deploy["status"]["conditions"]}["Available"] == "False"
    pod = kube_lab.kubectl_json("get", "pods", "-l", "app=rel-web")["items"][0]
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    failed = kube_lab.helm("upgrade", "rel", chart, "--set", "greeting=bye", "--set", "hookJob=false", "--wait", "--timeout", "2s", check=False)
    assert failed.returncode != 0 and "context deadline exceeded" in failed.stderr
    # The rolling update cannot progress: the old ReplicaSet keeps replicas - maxUnavailable.
    replicas = sorted(rs["spec"]["replicas"] for rs in kube_lab.kubectl_json("get", "rs", "-l", "app=rel-web")["items"])
    assert replicas == [2, 2]
    kube_lab.server.set_pod_state("default", "rel-web-", None)
    kube_lab.kubectl("rollout", "status", "deploy/rel-web", "--timeout=5s")
    assert sorted(rs["spec"]["replicas"] for rs in kube_lab.kubectl_json("get", "rs", "-l", "app=rel-web")["items"]) == [0, 2]

    # Only the new image crashes: the old Pods keep serving and the Deployment stays Available.
    kube_lab.server.set_pod_state("default", "rel-web-", "CrashLoopBackOff", image="nginx:1.27")
    failed = kube_lab.helm("upgrade", "rel", chart, "--set", "image=nginx:1.27", "--set", "hookJob=false", "--wait", "--timeout", "2s",
                           check=False)
    assert failed.returncode != 0
    pods = kube_lab.kubectl_json("get", "pods", "-l", "app=rel-web")["items"]
    ready = {p["spec"]["containers"][0]["image"]: p["status"]["containerStatuses"][0]["ready"] for p in pods}
    assert ready == {"nginx:1.25": True, "nginx:1.27": False}
    deploy = kube_lab.kubectl_json("get", "deploy", "rel-web")
    assert {c["type"]: c["status"] for c in deploy["status"]["conditions"]}["Available"] == "True"
    kube_lab.helm("rollback", "rel", "--wait", "--timeout", "5s")

    kube_lab.server.set_pod_state("default", "rel-migrate", "Failed")
    failed = kube_lab.helm("upgrade", "rel", chart, "--set", "greeting=again", "--wait", "--timeout", "10s", check=False)
    assert failed.returncode != 0 and "BackoffLimitExceeded" in failed.stderr
    job = kube_lab.kubectl_json("get", "job", "rel-migrate")
    assert [c["type"] for c in job["status"]["conditions"]] == ["FailureTarget", "Failed"]
