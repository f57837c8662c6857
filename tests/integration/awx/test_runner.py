"""Each playbook run the way AWX / Automation Controller runs it, against the lab.

ansible-runner with a private data directory: the inventory holds only the connection, every variable comes
from `env/extravars` as a string (what a survey sends: "true", "1", "circleci-server"), credentials come as
environment variables (`env/envvars`: KUBECONFIG, AWS_*), no TTY, `--check`. The JSON event stream must show
no failure, a plan with changes, no secret in any event, and the lab's request log no write.
"""
from __future__ import annotations

import json
import os

import ansible_runner
import pytest
import yaml

from ..conftest import REPO_ROOT

REGISTRY_PASSWORD = "canary-awx-registry-5c1d"
LICENSE = "canary-awx-license-93be"
VAULT_PASSWORD = "canary-awx-escrow-vault-2e71"
GITHUB_SECRET = "canary-awx-github-secret-0c4d"
# playbook, lab scenario, extra vars beyond the lab's inventory (as a survey sends them), secrets among them
PLAYBOOKS = {
    "upgrade-4.3.yml": ("aws-4.2", {
        "circleci_target_version": "4.3.9", "circleci_terminate_leftover_vms": "false",
        "circleci_registry_username": "awx-user", "circleci_registry_password": REGISTRY_PASSWORD}),
    "migrate-3-to-4.yml": ("aws-3.4", {
        "circleci_target_version": "4.0.6", "circleci_license": LICENSE, "circleci_registry_username": "awx-user",
        "circleci_registry_password": REGISTRY_PASSWORD, "migrate_3_to_4_confirm_kots_cleanup": "false"}),
    "install.yml": ("aws-empty", {
        "circleci_license": LICENSE, "circleci_escrow_vault_password": VAULT_PASSWORD,
        "circleci_github_client_id": "awx-client", "circleci_github_client_secret": GITHUB_SECRET,
        "circleci_object_storage_create_bucket": "true", "circleci_install_dir_override": "",
        "circleci_escrow_file_override": ""}),
}
SECRETS = (REGISTRY_PASSWORD, LICENSE, VAULT_PASSWORD, GITHUB_SECRET)


def _as_survey_strings(variables: dict) -> dict:
    """What AWX puts in extravars: every survey answer a string; dictionaries (no survey question) come from the
    job template's extra variables as they are."""
    return {k: (v if isinstance(v, (dict, list)) else json.dumps(v) if isinstance(v, bool) else str(v))
            for k, v in variables.items()}


def _private_data_dir(tmp_path, lab, extra: dict):
    with open(lab.files["inventory"]) as handle:
        host_vars = yaml.safe_load(handle)["all"]["hosts"]["localhost"]
    connection = {k: v for k, v in host_vars.items() if k.startswith("ansible_")}
    extravars = _as_survey_strings({k: v for k, v in host_vars.items() if not k.startswith("ansible_")})
    extravars.update(extra, circleci_work_dir=str(tmp_path / "work"))
    if str(extravars.get("circleci_chart_repository", "")).startswith("oci://"):
        # the lab's registry requires its own (random) credentials, as an AWX credential would give them
        with open(lab.files["registry_credentials"]) as handle:
            extravars.update(yaml.safe_load(handle))
    data = tmp_path / "runner"
    (data / "inventory").mkdir(parents=True)
    (data / "env").mkdir()
    (data / "inventory" / "hosts.json").write_text(json.dumps({"all": {"hosts": {"localhost": connection}}}))
    (data / "env" / "extravars").write_text(json.dumps(extravars))
    envvars = dict(lab.env, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".cache" / "collections"),
                   ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", AWS_EC2_METADATA_DISABLED="true")
    envvars.setdefault("AWS_ACCESS_KEY_ID", "testing")
    envvars.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    (data / "env" / "envvars").write_text(json.dumps(envvars))
    os.chmod(data / "env" / "extravars", 0o600)
    return data


@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS))
def test_check_run_through_ansible_runner(playbook, lab_up, tmp_path):
    scenario, extra = PLAYBOOKS[playbook]
    lab = lab_up(scenario)
    lab.admin.clear_requests()
    data = _private_data_dir(tmp_path, lab, extra)
    result = ansible_runner.run(private_data_dir=str(data), playbook=str(REPO_ROOT / "playbooks" / playbook),
                                cmdline="--check --diff", quiet=True, timeout=600)
    events = list(result.events)
    failures = [e for e in events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    assert result.status == "successful", (result.status, [e["event_data"].get("res", {}).get("msg") for e in failures])
    assert failures == []
    stats = result.stats
    assert stats["failures"] == {} and stats["dark"] == {}
    assert stats["changed"].get("localhost", 0) > 0, "the plan shows the changes the real run makes"
    stream = json.dumps(events)
    lab_registry_password = json.loads((data / "env" / "extravars").read_text()).get("circleci_registry_password")
    secrets = SECRETS + ((lab_registry_password,) if lab_registry_password else ())
    leaked = [s for s in secrets if s in stream]
    assert leaked == [], "a secret reached the event stream"
    # a Kubernetes server-side dry run (dryRun=All, what kubernetes.core.k8s sends in check mode) persists nothing
    writes = [r for r in lab.admin.requests() if "dryRun=All" not in r["path"]]
    assert writes == [], "check mode wrote to the lab: %s" % writes[:5]
    # install.yml: an unanswered install-dir question ("") is <inventory dir>/circleci-install; check mode leaves none
    assert not (data / "inventory" / "circleci-install").exists()
