"""upgrade-4.3.yml against the lab: the plan in check mode, resuming after a failure, no secret anywhere.

The molecule scenarios (molecule/upgrade_43_*) show converge, idempotence and the end state; these tests
show what molecule cannot: that --check writes nothing and names every change the real run makes, that a
failure at any mutating step is finished by a plain re-run, and that secrets never reach the output or argv.
"""
from __future__ import annotations

import json
import os
import re
import threading

import boto3
import pytest

from ..conftest import REPO_ROOT

PLAYBOOK = str(REPO_ROOT / "playbooks" / "upgrade-4.3.yml")
ROLE_ALONE_PLAYBOOK = """---
- name: helm_upgrade on its own, to a chart the registry does not have
  hosts: "{{ circleci_hosts | default('localhost') }}"
  gather_facts: false
  tasks:
    - name: Upgrade
      ansible.builtin.include_role:
        name: circleci.server.helm_upgrade
      vars:
        helm_upgrade_chart_version: 4.3.5
"""
TASK_RE = re.compile(r"^TASK \[(?P<name>.+?)\] \*+$")


def changed_tasks(output: str) -> set:
    """The names of the tasks that reported changed (or would have, in check mode)."""
    changed, task = set(), None
    for line in output.splitlines():
        match = TASK_RE.match(line)
        if match:
            task = match.group("name")
        elif line.startswith("changed: [") and task:
            changed.add(task)
    return changed


SECRET_KEY = re.compile(r"(token|secret|password|keyset|cookie|key)(\.|$)", re.IGNORECASE)


def secret_values(values_file) -> list:
    """The values of every secret-looking key of the operator's values file (the canaries to look for)."""
    import yaml
    found = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for child_key, child in node.items():
                walk(child, "%s.%s" % (key, child_key))
        elif isinstance(node, list):
            for child in node:
                walk(child, key)
        elif isinstance(node, str) and len(node) >= 8 and SECRET_KEY.search(key):
            found.append(node)

    with open(values_file) as handle:
        walk(yaml.safe_load(handle))
    return found


def play(run, lab, *extra, check=True, env=None):
    return run("ansible-playbook", "-i", lab.files["inventory"], PLAYBOOK, *extra, env=dict(lab.env, **(env or {})),
               check=check)


def end_state(lab) -> dict:
    env = lab.env
    session = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    trust = boto3.client("iam", **session).get_role(RoleName="circleci-vm")["Role"]["AssumeRolePolicyDocument"]
    (group,) = boto3.client("ec2", **session).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["circleci-vm-service-sg"]}])["SecurityGroups"]
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=lab.files["kubeconfig"])
    deployments = {d.metadata.name for d in client.AppsV1Api(api).list_namespaced_deployment("circleci-server").items}
    releases = client.CoreV1Api(api).list_namespaced_secret("circleci-server", label_selector="owner=helm,status=deployed").items
    versioning = boto3.client("s3", **session).get_bucket_versioning(Bucket="acme-circleci-server-artifacts").get("Status")
    return {
        "bucket_versioning": versioning,
        "subjects": sorted(re.findall(r"system:serviceaccount:[\w-]+:[\w-]+", json.dumps(trust))),
        "ports": sorted({p.get("FromPort") for p in group["IpPermissions"]}),
        "deployed": [s.metadata.labels["name"] + "@" + s.metadata.labels["version"] for s in releases],
        "machine_provisioner": "machine-provisioner" in deployments,
        "vm_service": "vm-service" in deployments,
    }


def test_check_mode_writes_nothing_and_names_every_change_the_run_makes(lab_up, run, tmp_path):
    lab = lab_up("aws-4.2")
    with open(lab.files["values"]) as handle:
        values_before = handle.read()
    # HOME and TMPDIR of the run: the check-mode plan (every secret in clear) must not outlive the run.
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    private = {"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")}
    # "v4.3.9": a leading v is a version too, normalised once.
    planned = play(run, lab, "--check", "--diff", "-e", "circleci_target_version=v4.3.9", env=private)
    assert lab.admin.requests() == [], "check mode must not write to the cluster or the clouds"
    with open(lab.files["values"]) as handle:
        assert handle.read() == values_before, "check mode must not touch the operator's values file"
    for expected in ("machine_provisioner", "2376", "machine-provisioner"):
        assert expected in planned.stdout
    assert not (tmp_path / "home" / ".circleci-server").exists(), "the check-mode plan was left in HOME"
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("circleci-server-")] == []

    applied = play(run, lab, "--diff", env=private)
    assert lab.admin.requests(), "the real run writes"
    missing = changed_tasks(applied.stdout) - changed_tasks(planned.stdout)
    assert not missing, "the real run changed what the plan did not show: %s" % sorted(missing)
    # The summary: the release diff as a sentence, no DLC volumes to delete when there are none.
    assert re.search(r"Release: \d+ to add, \d+ to change, \d+ to remove", applied.stdout), applied.stdout[-3000:]
    assert "DLC volumes" not in applied.stdout.split("Manual actions left")[-1]
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("circleci-server-")] == []

    state = end_state(lab)
    assert state["bucket_versioning"] == "Enabled", "DLC on S3 needs versioning: enabled by default"
    assert state["deployed"][-1].startswith("circleci-server@")
    assert state["machine_provisioner"] and not state["vm_service"]
    assert state["subjects"] == ["system:serviceaccount:circleci-server:machine-provisioner"]
    assert 2376 not in state["ports"] and 54782 in state["ports"]

    lab.admin.clear_requests()
    # Without a values file (the release's values): a re-run changes nothing either.
    again = play(run, lab, "-e", "circleci_values_file=")
    assert changed_tasks(again.stdout) == set()
    assert re.search(r"changed=0 ", again.stdout)
    assert [r for r in lab.admin.requests() if r["method"] != "PATCH"] == [], "a re-run after success writes nothing"


@pytest.mark.parametrize("service, method, path", [
    ("aws", "POST", r"^iam/UpdateAssumeRolePolicy$"),
    ("kube", "PUT|POST", r"/namespaces/circleci-server/secrets"),
    ("aws", "POST", r"^ec2/RevokeSecurityGroupIngress$"),
], ids=["trust-policy", "helm-upgrade", "security-group"])
def test_a_failed_step_is_finished_by_a_plain_rerun(lab_up, run, service, method, path):
    lab = lab_up("aws-4.2")
    for verb in method.split("|"):
        # A permanent error: a throttle or a 5xx would (rightly) be retried and the run would not fail.
        lab.admin.add_fault(path, service=service, method=verb, nth=1, status=403,
                            message="AccessDenied: injected by the test")
    failed = play(run, lab, check=False)
    assert failed.returncode != 0
    assert any(f["fired"] for f in lab.admin.faults()), "the fault was never reached"
    lab.admin.clear_faults()
    play(run, lab)
    state = end_state(lab)
    assert state["subjects"] == ["system:serviceaccount:circleci-server:machine-provisioner"]
    assert 2376 not in state["ports"]
    assert state["machine_provisioner"] and not state["vm_service"]


def test_no_secret_reaches_the_output_or_any_command_line(lab_up, run, tmp_path):
    lab = lab_up("aws-4.2")
    import yaml
    with open(lab.files["registry_credentials"]) as handle:
        registry_password = yaml.safe_load(handle)["circleci_registry_password"]   # random per lab: a canary
    extra = tmp_path / "secrets.yml"
    extra.write_text("circleci_registry_password: %s\n" % registry_password)
    os.chmod(extra, 0o600)
    seen_argv, stop = set(), threading.Event()

    def sample_argv():
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        with open("/proc/%s/cmdline" % pid, "rb") as handle:
                            seen_argv.add(handle.read().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample_argv, daemon=True)
    sampler.start()
    try:
        result = play(run, lab, "-vvvv", "--diff", "-e", "@%s" % extra)
    finally:
        stop.set()
        sampler.join()
    # The Tink keyset is JSON: its key material alone must not leak either (e.g. re-serialised).
    canaries = secret_values(lab.files["values"]) + [registry_password, "lab-fake-tink-key-material"]
    assert len(canaries) >= 8, canaries
    for canary in canaries:
        assert canary not in result.stdout and canary not in result.stderr, canary
        assert not [argv for argv in seen_argv if canary in argv], canary
    assert len(seen_argv) > 10, "the argv sampler saw nothing"


def test_a_failed_rollback_is_reported_as_helm_left_it(lab_up, run, tmp_path):
    """The upgrade fails (a Deployment update refused) and so does helm's atomic rollback (its release record refused):
    the message must not say "rolled back"; it gives helm's error, the release's real state, and that IAM moved."""
    lab = lab_up("aws-4.2")
    lab.admin.add_fault(r"/apis/apps/v1/namespaces/circleci-server/deployments/", service="kube", method="PATCH", nth=1,
                        status=422, message="injected by the test: upgrade")
    # the upgrade's own release record is the 1st POST of a release Secret; the rollback's is the 2nd
    lab.admin.add_fault(r"/namespaces/circleci-server/secrets$", service="kube", method="POST", nth=2, status=403,
                        message="injected by the test: rollback")
    failed = play(run, lab, check=False)
    assert failed.returncode != 0
    assert all(f["fired"] for f in lab.admin.faults()), lab.admin.faults()
    message = failed.stdout[failed.stdout.index("Stop because the upgrade to 4.3.9 failed"):]
    assert "helm could NOT roll it back" in message and "rolled back)" not in message, message[:3000]
    assert re.search(r"The release is now at revision \d+, failed", message), message[:3000]
    assert "circleci.server.iam_role_trust_subject" in message and "to_subject=system:serviceaccount:circleci-server:vm-service" in message
    # A plain re-run stops at the preflight: helm's latest revision is failed.
    lab.admin.clear_faults()
    again = play(run, lab, check=False)
    assert again.returncode != 0 and re.search(r"revision \d+ \(circleci-server-4.3.9\) is failed", again.stdout), again.stdout[-3000:]

    # helm_upgrade on its own (as migrate-3-to-4.yml uses it) logs in itself: its temporary registry config (the
    # registry token) must go also when the upgrade fails (here: a chart version the registry does not have).
    (tmp_path / "tmp").mkdir()
    playbook = tmp_path / "helm-upgrade-alone.yml"
    playbook.write_text(ROLE_ALONE_PLAYBOOK)
    alone = run("ansible-playbook", "-i", lab.files["inventory"], str(playbook), "-e",
                "circleci_values_file=%s" % lab.files["values"], env=dict(lab.env, TMPDIR=str(tmp_path / "tmp")),
                check=False)
    assert alone.returncode != 0 and "helm upgrade of circleci-server to 4.3.5 failed" in alone.stdout, alone.stdout[-3000:]
    assert "TASK [circleci.server.helm_upgrade : Log in to the registry (password on stdin)]" in alone.stdout
    left = [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("circleci-server-")]
    assert left == [], "the registry config outlived the failed upgrade: %s" % left
