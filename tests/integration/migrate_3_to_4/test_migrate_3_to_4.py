# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/migrate-3-to-4.yml against the lab's KOTS-era 3.4.8 install, as an operator's maintenance window
goes: --check first, a run that stops on a failing circle-migrator Job, the KOTS cleanup that stops until it is
confirmed, the fixed and confirmed run, then a re-run that changes nothing. One lab (scenario
aws-3.4-migrator-fails, whose migrator fails with the default image only) keeps the suite short; the plain
aws-3.4 scenario runs in molecule/migrate_3_to_4."""
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
CONFIRM = ("-e", "migrate_3_to_4_confirm_kots_cleanup=true")
# The lab's stand-in for the fix: any migrator image but the failing one succeeds.
FIXED = ("-e", "circle_migrator_image=cciserver.azurecr.io/circle-migrator:0.1.540117-fixed", "-e", "circle_migrator_retry_failed=true")


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


def changed_tasks(stdout):
    return [block.split("]", 1)[0] for block in stdout.split("TASK [") if "\nchanged:" in block]


def test_check_then_failing_migrator_then_fixed_confirmed_migration_then_rerun(lab_up, run, secrets_file):
    lab = lab_up("aws-3.4-migrator-fails")
    pvc_uid = kubectl(run, lab, "get", "pvc", "data-postgresql-0")["metadata"]["uid"]
    values_file = secrets_file.parent / "work" / "circleci-server" / "values-4.0.yaml"

    # 1. --check --diff: the whole plan, not one write (not even a dry-run request), no values file.
    lab.admin.clear_requests()
    check = migrate(run, lab, secrets_file, "--check", "--diff", *CONFIRM)
    assert recap(check.stdout)["failed"] == 0
    assert lab.admin.requests() == []
    assert not values_file.exists()
    assert "Would create Secret circleci-server/regcred" in check.stdout and "To delete (16)" in check.stdout

    # 2. The migrator Job fails: the run stops with its log tail, before the KOTS cleanup and any helm upgrade.
    failed = migrate(run, lab, secrets_file, *CONFIRM, check=False)
    assert failed.returncode != 0
    assert "The circle-migrator Job (Flyway over the domain database) is Failed" in failed.stdout
    assert "ERROR: Validate failed: Migrations have failed validation" in failed.stdout  # the log tail
    assert "kots_cleanup : Clean up KOTS" not in failed.stdout and "helm_upgrade : Upgrade" not in failed.stdout
    assert [r["chart"] for r in release(run, lab)] == ["circleci-server-3.4.8"] * 2
    assert kubectl(run, lab, "get", "statefulset", "-l", "kots.io/kotsadm=true")["items"]
    assert not kubectl(run, lab, "get", "secret", "-l", "app=circle-migrator")["items"]  # no credential left behind

    # 3. The cleanup step alone (with the preflight, always), not confirmed: it lists and stops before the point
    #    of no return.
    unconfirmed = migrate(run, lab, secrets_file, "--tags", "kots_cleanup", check=False)
    assert unconfirmed.returncode != 0
    assert "re-run with -e migrate_3_to_4_confirm_kots_cleanup=true" in unconfirmed.stdout
    assert "StatefulSet/kotsadm-minio, StatefulSet/kotsadm-postgres" in unconfirmed.stdout
    assert kubectl(run, lab, "get", "statefulset", "-l", "kots.io/kotsadm=true")["items"]
    assert release(run, lab)[-1]["chart"] == "circleci-server-3.4.8"

    # 4. Fixed (another migrator image, the failed Job replaced) and confirmed: migrated to 4.0.6, with -vvvv and
    #    --diff, and no secret in the output.
    first = migrate(run, lab, secrets_file, *FIXED, *CONFIRM, "--diff", "-vvvv")
    history = release(run, lab)
    assert history[-1]["chart"] == "circleci-server-4.0.6" and history[-1]["status"] == "deployed"
    # Adopted by Helm: the KOTS LoadBalancers are now the chart's ClusterIP Services, with no KOTS label left.
    service = kubectl(run, lab, "get", "service", "vm-service")
    assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert service["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"
    assert service["spec"]["type"] == "ClusterIP" and "kots.io/app-slug" not in service["metadata"]["labels"]
    assert kubectl(run, lab, "get", "service", "circleci-proxy")["spec"]["type"] == "LoadBalancer"
    assert kubectl(run, lab, "get", "secret", "regcred")["type"] == "kubernetes.io/dockerconfigjson"
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
    assert stat.S_IMODE(os.stat(values_file).st_mode) == 0o600 and POSTGRES_PASSWORD in values_file.read_text()
    assert 'server_endpoint = \\"circleci.acme.example:4647\\"' in first.stdout

    # 5. A re-run changes nothing.
    second = migrate(run, lab, secrets_file, *FIXED, *CONFIRM)
    assert recap(second.stdout)["changed"] == 0, changed_tasks(second.stdout)
    assert len(release(run, lab)) == len(history)
