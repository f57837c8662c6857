"""The lab as an operator meets it: `python -m tests.lab up SCENARIO`, the real clients, `down`."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from urllib.parse import urlparse

import boto3
import pytest

from ..conftest import REPO_ROOT

PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")


def _listening(url):
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((parsed.hostname, parsed.port)) == 0


def test_aws_scenario_is_seen_by_kubectl_helm_and_the_aws_cli(lab_up, run, ansible_env):
    lab = lab_up("aws-4.2")
    env = dict(ansible_env, **lab.env)

    deployments = json.loads(run("kubectl", "get", "deploy", "-A", "-o", "json", env=env).stdout)
    names = {d["metadata"]["name"] for d in deployments["items"]}
    assert {"frontend", "api-service", "vm-service", "workflows-conductor-event-consumer"} <= names
    assert "machine-provisioner" not in names
    assert all(d["status"].get("readyReplicas") == d["spec"]["replicas"] for d in deployments["items"])

    releases = json.loads(run("helm", "list", "-A", "-o", "json", env=env).stdout)
    assert [(r["name"], r["chart"], r["status"]) for r in releases] == [("circleci-server", "circleci-server-4.2.7", "deployed")]

    groups = json.loads(run("aws", "autoscaling", "describe-auto-scaling-groups", "--output", "json", env=env).stdout)
    (group,) = groups["AutoScalingGroups"]
    assert group["DesiredCapacity"] == 6 and len(group["Instances"]) == 6
    assert "LaunchTemplate" in group

    version = json.loads(run("kubectl", "version", "-o", "json", env=env).stdout)["serverVersion"]
    assert version["minor"].rstrip("+") == "27"


def test_seeded_cloud_matches_the_scenario(lab_up):
    lab = lab_up("aws-4.2")
    env = lab.env
    session = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    iam = boto3.client("iam", **session)
    trust = iam.get_role(RoleName="circleci-vm")["Role"]["AssumeRolePolicyDocument"]
    subjects = json.dumps(trust)
    assert "system:serviceaccount:circleci-server:vm-service" in subjects
    ec2 = boto3.client("ec2", **session)
    (group,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["circleci-vm-service-sg"]}])["SecurityGroups"]
    assert 2376 in {p.get("FromPort") for p in group["IpPermissions"]}
    # The operator's values file carries the ids the cloud assigned, with its comments, mode 0600.
    with open(lab.files["values"]) as handle:
        values_text = handle.read()
    assert group["GroupId"] in values_text
    assert "#" in values_text
    assert oct(os.stat(lab.files["values"]).st_mode & 0o777) == "0o600"


def test_nomad_clients_of_the_asg_are_ready_nodes(lab_up):
    import nomad  # python-nomad
    lab = lab_up("aws-4.2")
    parsed = urlparse(lab.endpoints["nomad"])
    client = nomad.Nomad(host=parsed.hostname, port=parsed.port, timeout=5)
    nodes = client.nodes.get_nodes()
    assert len(nodes) == 6
    assert {n["Status"] for n in nodes} == {"ready"}


def test_gcp_scenario_has_a_mig_and_a_workload_identity_binding(lab_up):
    import google.auth.credentials
    from google.auth.transport.requests import AuthorizedSession
    lab = lab_up("gcp-4.2")
    session = AuthorizedSession(google.auth.credentials.AnonymousCredentials())
    base = lab.endpoints["gcp"]
    managed = session.post(base + "/compute/v1/projects/acme-circleci-prod/zones/us-east1-b/instanceGroupManagers/"
                                  "circleci-server-nomad/listManagedInstances", timeout=10).json()
    assert len(managed["managedInstances"]) == 6
    email = "circleci-server-vm@acme-circleci-prod.iam.gserviceaccount.com"
    policy = session.post(base + "/v1/projects/acme-circleci-prod/serviceAccounts/%s:getIamPolicy" % email, json={}, timeout=10).json()
    members = [m for b in policy["bindings"] for m in b["members"]]
    assert "serviceAccount:acme-circleci-prod.svc.id.goog[circleci-server/vm-service]" in members


def test_request_log_starts_empty_records_writes_and_faults_fire(lab_up, run, ansible_env):
    lab = lab_up("aws-4.2")
    env = dict(ansible_env, **lab.env)
    assert lab.admin.requests() == [], "seeding must not count as a playbook's writes"
    run("kubectl", "get", "pods", "-n", "circleci-server", env=env)
    assert lab.admin.requests() == [], "reads are not logged"
    lab.admin.add_fault(r"/namespaces/circleci-server/configmaps(\?|$)", service="kube", method="POST", nth=1, status=500)
    failed = run("kubectl", "create", "configmap", "probe", "-n", "circleci-server", "--from-literal=a=b", env=env, check=False)
    assert failed.returncode != 0
    run("kubectl", "create", "configmap", "probe", "-n", "circleci-server", "--from-literal=a=b", env=env)
    writes = [(r["service"], r["method"], r["status"]) for r in lab.admin.requests()]
    assert writes == [("kube", "POST", 500), ("kube", "POST", 201)]
    assert lab.admin.faults()[0]["fired"] is True


def test_down_leaves_no_process_or_port_behind(tmp_path, run):
    state_dir = tmp_path / "lab"
    run(PYTHON, "-m", "tests.lab", "up", "gcp-4.2", "--state-dir", str(state_dir))
    state = json.loads((state_dir / "lab.json").read_text())
    assert all(_listening(url) for url in state["endpoints"].values())
    run(PYTHON, "-m", "tests.lab", "down", "--state-dir", str(state_dir))
    assert not any(_listening(url) for url in state["endpoints"].values())
    with pytest.raises(ProcessLookupError):
        os.kill(state["pid"], 0)
    assert not (state_dir / "lab.json").exists()
    status = subprocess.run([PYTHON, "-m", "tests.lab", "status", "--state-dir", str(state_dir)], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=False)
    assert status.returncode == 3 and "down" in status.stdout


def test_a_stale_state_file_is_neither_trusted_nor_killed(tmp_path, run):
    """A lab.json left by a lab that died may name a pid the system gave to another process (here: this test)."""
    state_dir = tmp_path / "lab"
    state_dir.mkdir()
    stale = {"pid": os.getpid(), "scenario": "gcp-4.2", "endpoints": {"admin": "http://127.0.0.1:9"}, "files": {}, "ready": True}
    (state_dir / "lab.json").write_text(json.dumps(stale))
    run(PYTHON, "-m", "tests.lab", "down", "--state-dir", str(state_dir))  # must not signal this process
    (state_dir / "lab.json").write_text(json.dumps(stale))
    run(PYTHON, "-m", "tests.lab", "up", "gcp-4.2", "--state-dir", str(state_dir))
    state = json.loads((state_dir / "lab.json").read_text())
    try:
        assert state["pid"] != os.getpid() and _listening(state["endpoints"]["admin"])
    finally:
        run(PYTHON, "-m", "tests.lab", "down", "--state-dir", str(state_dir))
