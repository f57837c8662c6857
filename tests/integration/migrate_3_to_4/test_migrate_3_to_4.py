# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/migrate-3-to-4.yml against the lab's KOTS-era 3.4.8 install (scenario aws-3.4)."""
from __future__ import annotations

import json
import os
import re
import stat

import pytest

PLAYBOOK = "playbooks/migrate-3-to-4.yml"
LICENSE = "lab-fake-4x-license-9f8e7d"
REGISTRY_PASSWORD = "lab-fake-registry-password-1234"
POSTGRES_PASSWORD = "lab-fake-postgres-password-2e9f"  # in the scenario's 3.x values


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.yml"
    path.write_text("circleci_license: %s\ncircleci_registry_username: lab-fake-registry-user\n"
                    "circleci_registry_password: %s\ncircleci_work_dir: %s\n" % (LICENSE, REGISTRY_PASSWORD, tmp_path / "work"))
    os.chmod(path, 0o600)
    return path


def migrate(run, lab, secrets_file, *extra, check=True):
    return run("ansible-playbook", "-i", lab.files["inventory"], "-e", "@%s" % secrets_file, PLAYBOOK, *extra,
               env=lab.env, check=check)


def recap(stdout):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", stdout)
    assert match, stdout[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def kubectl(run, lab, *args):
    return json.loads(run("kubectl", "-n", "circleci-server", *args, "-o", "json", env=lab.env).stdout)


def release(run, lab):
    return json.loads(run("helm", "-n", "circleci-server", "history", "circleci-server", "-o", "json", env=lab.env).stdout)


def test_stops_before_the_point_of_no_return_then_migrates_and_a_rerun_changes_nothing(lab_up, run, secrets_file):
    lab = lab_up("aws-3.4")
    pvc_uid = kubectl(run, lab, "get", "pvc", "data-postgresql-0")["metadata"]["uid"]

    # Only the preflight (always) and the cleanup step: without the confirmation it lists and stops.
    unconfirmed = migrate(run, lab, secrets_file, "--tags", "kots_cleanup", check=False)
    assert unconfirmed.returncode != 0
    assert "re-run with -e migrate_3_to_4_confirm_kots_cleanup=true" in unconfirmed.stdout
    assert "StatefulSet/kotsadm-minio, StatefulSet/kotsadm-postgres" in unconfirmed.stdout
    assert kubectl(run, lab, "get", "statefulset", "-l", "kots.io/kotsadm=true")["items"]
    assert release(run, lab)[-1]["chart"] == "circleci-server-3.4.8"

    first = migrate(run, lab, secrets_file, "-e", "migrate_3_to_4_confirm_kots_cleanup=true", "--diff", "-vvvv")
    assert recap(first.stdout)["changed"] > 0
    history = release(run, lab)
    assert history[-1]["chart"] == "circleci-server-4.0.6" and history[-1]["status"] == "deployed"
    # Adopted by Helm: the KOTS LoadBalancers are now the chart's ClusterIP Services, with no KOTS label left.
    service = kubectl(run, lab, "get", "service", "vm-service")
    assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert service["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"
    assert service["spec"]["type"] == "ClusterIP" and "kots.io/app-slug" not in service["metadata"]["labels"]
    assert kubectl(run, lab, "get", "service", "circleci-proxy")["spec"]["type"] == "LoadBalancer"
    regcred = kubectl(run, lab, "get", "secret", "regcred")
    assert regcred["type"] == "kubernetes.io/dockerconfigjson"
    job = kubectl(run, lab, "get", "job", "circle-migrator")
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    job_text = json.dumps(job)
    assert POSTGRES_PASSWORD not in job_text and "secretKeyRef" in job_text  # by reference only
    assert kubectl(run, lab, "get", "all,secret,pvc,cm", "-l", "kots.io/kotsadm=true")["items"] == []
    assert not [s for s in kubectl(run, lab, "get", "secret")["items"]
                if s["metadata"]["name"] in ("kotsadm-sessions", "kotsadm-replicated-registry", "circle-migrator-postgres")]
    assert kubectl(run, lab, "get", "pvc", "data-postgresql-0")["metadata"]["uid"] == pvc_uid  # data volume kept
    for secret in (LICENSE, REGISTRY_PASSWORD, POSTGRES_PASSWORD, "lab-fake-mongo-root-password-31c4"):
        assert secret not in first.stdout and secret not in first.stderr  # not even with -vvvv
    values_file = secrets_file.parent / "work" / "circleci-server" / "values-4.0.yaml"
    assert stat.S_IMODE(os.stat(values_file).st_mode) == 0o600 and POSTGRES_PASSWORD in values_file.read_text()
    assert "server_endpoint = \\\"circleci.acme.example:4647\\\"" in first.stdout

    second = migrate(run, lab, secrets_file)
    changed_tasks = [block.split("]", 1)[0] for block in second.stdout.split("TASK [") if "\nchanged:" in block]
    assert recap(second.stdout)["changed"] == 0, changed_tasks
    assert len(release(run, lab)) == len(history)


def test_check_mode_sends_no_write_and_writes_no_values_file(lab_up, run, secrets_file, tmp_path):
    lab = lab_up("aws-3.4")
    lab.admin.clear_requests()
    proc = migrate(run, lab, secrets_file, "--check", "--diff", "-e", "migrate_3_to_4_confirm_kots_cleanup=true")
    assert recap(proc.stdout)["failed"] == 0
    assert lab.admin.requests() == []
    assert not (tmp_path / "work" / "circleci-server" / "values-4.0.yaml").exists()
    assert "Would create Secret circleci-server/regcred" in proc.stdout
    assert "To delete (16)" in proc.stdout
    assert release(run, lab)[-1]["chart"] == "circleci-server-3.4.8"


def test_a_failing_migrator_stops_with_its_log_before_cleanup_and_upgrade(lab_up, run, secrets_file):
    lab = lab_up("aws-3.4-migrator-fails")
    proc = migrate(run, lab, secrets_file, "-e", "migrate_3_to_4_confirm_kots_cleanup=true", check=False)
    assert proc.returncode != 0
    assert "The circle-migrator Job (Flyway over the domain database) is Failed" in proc.stdout
    assert "ERROR: Validate failed: Migrations have failed validation" in proc.stdout  # the log tail
    assert "kots_cleanup : Clean up KOTS" not in proc.stdout and "helm_upgrade : Upgrade" not in proc.stdout
    assert len(release(run, lab)) == 2 and release(run, lab)[-1]["chart"] == "circleci-server-3.4.8"
    assert kubectl(run, lab, "get", "statefulset", "-l", "kots.io/kotsadm=true")["items"]
