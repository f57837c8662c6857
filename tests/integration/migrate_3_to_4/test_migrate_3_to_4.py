# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/migrate-3-to-4.yml against the lab's KOTS-era 3.4.8 install, as an operator's maintenance window
goes: a run that stops on a failing circle-migrator Job, the KOTS cleanup that stops until it is confirmed (and
refuses values that lack a datastore password), the fixed and confirmed run (release diff before the upgrade, the
cluster's passwords carried, DNS records upserted in Route 53, the Nomad clients rolled onto the new endpoint's
launch template, no secret in its -vvvv output), then the migrated (4.x) release refused by every step with no write.
One lab (scenario aws-3.4-migrator-fails, whose migrator fails with the default image only). The check run (no
write, the plan: the cleanup's deletions, the release diff), the re-run that changes nothing (Nomad roll included),
the resume after a fault at each mutating step and the end state are the reliability suite's proofs on the plain
aws-3.4 scenario (tests/integration/reliability/test_migrate_3_to_4.py), not repeated here."""
from __future__ import annotations

import base64
import json
import os
import stat

import boto3
import pytest
import requests
import yaml


PLAYBOOK = "playbooks/migrate-3-to-4.yml"
LICENSE = "lab-fake-4x-license-9f8e7d"
REGISTRY_PASSWORD = "lab-fake-registry-password-1234"
CONFIRM = ("-e", "migrate_3_to_4_confirm_kots_cleanup=true")
# The lab's stand-in for the fix: any migrator image but the failing one succeeds.
FIXED = ("-e", "circle_migrator_image=cciserver.azurecr.io/circle-migrator:0.1.540117-fixed", "-e", "circle_migrator_retry_failed=true")
# Recorded `terraform output -json` of the server-terraform nomad-aws module (lab data): the Nomad clients' Terraform
# is the operator's to apply; given its outputs, the migration puts their mTLS material in the 4.0 values.
NOMAD_OUTPUTS = ("-e", "circleci_nomad_terraform_outputs_file=%s" % os.path.join(
    os.path.dirname(__file__), "..", "..", "lab", "scenarios", "aws-empty", "nomad-aws-outputs.json"))
# The 3.x datastore Secrets, key -> the 4.0 values path that must carry it (the chart generated most of them: they
# are in no values file, only in the cluster).
CARRIED = {("postgresql", "postgresql-password"): ("postgresql", "auth", "postgresPassword"),
           ("mongodb", "mongodb-root-password"): ("mongodb", "auth", "rootPassword"),
           ("mongodb", "mongodb-password"): ("mongodb", "auth", "password"),
           ("rabbitmq", "rabbitmq-password"): ("rabbitmq", "auth", "password"),
           ("rabbitmq", "rabbitmq-erlang-cookie"): ("rabbitmq", "auth", "erlangCookie")}
# Direct module calls, as an operator pointing a step at the wrong release would make them; their messages are
# written to outcome.json.
MODULES = """
- name: Steps pointed at a release
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Export
      circleci.server.kots_export:
        namespace: circleci-server
        dest: "{{ work }}/hostile-values.yaml"
        license: not-a-secret-license
        kubeconfig: "{{ circleci_kubeconfig }}"
      register: export
      ignore_errors: true
      when: "'export' in steps"
    - name: Clean up
      circleci.server.kots_cleanup:
        namespace: circleci-server
        postgresql_internal: true
        values_file: "{{ values_file | default(omit) }}"
        kubeconfig: "{{ circleci_kubeconfig }}"
      register: cleanup
      ignore_errors: true
      when: "'cleanup' in steps"
    - name: Outcomes
      ansible.builtin.copy:
        content: "{{ {'export': export.msg | default('skipped'), 'cleanup': cleanup.msg | default('skipped')} | to_json }}"
        dest: "{{ work }}/outcome.json"
        mode: "0600"
"""


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


def kubectl(run, lab, *args):
    return json.loads(run("kubectl", "-n", "circleci-server", *args, "-o", "json", env=lab.env).stdout)


def release(run, lab):
    return json.loads(run("helm", "-n", "circleci-server", "history", "circleci-server", "-o", "json", env=lab.env).stdout)


def helm_values(run, lab):
    return json.loads(run("helm", "-n", "circleci-server", "get", "values", "circleci-server", "-o", "json", env=lab.env).stdout)


def secret_data(run, lab, name):
    data = kubectl(run, lab, "get", "secret", name)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def dig(tree, path):
    for key in path:
        tree = (tree or {}).get(key)
    return tree


def modules(run, lab, tmp_path, *steps, **variables):
    book = tmp_path / "steps.yml"
    book.write_text(MODULES)
    extra = ["-e", json.dumps(dict(variables, steps=list(steps), work=str(tmp_path)))]
    run("ansible-playbook", "-i", lab.files["inventory"], str(book), *extra, env=lab.env)
    return json.loads((tmp_path / "outcome.json").read_text())


def route53_records(lab):
    inventory = yaml.safe_load(open(lab.files["vars"], encoding="utf-8"))
    client = boto3.client("route53", endpoint_url=inventory["circleci_aws_endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    sets = client.list_resource_record_sets(HostedZoneId=inventory["circleci_route53_zone_id"])["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): [v["Value"] for v in r.get("ResourceRecords", [])] for r in sets if r["Type"] in ("A", "CNAME")}


def nomad_clients(lab):
    """The clients' group instances (id -> image) and the Nomad nodes (instance id -> status, eligibility)."""
    inventory = yaml.safe_load(open(lab.files["vars"], encoding="utf-8"))
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    group = session.client("autoscaling", endpoint_url=inventory["circleci_aws_endpoint_url"]).describe_auto_scaling_groups(
        AutoScalingGroupNames=[inventory["circleci_lab_nomad_client_group"]])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = session.client("ec2", endpoint_url=inventory["circleci_aws_endpoint_url"]).describe_instances(
        InstanceIds=ids)["Reservations"] if ids else []
    images = {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}
    nodes = {}
    for node in requests.get(inventory["circleci_nomad_address"] + "/v1/nodes", timeout=10).json():
        detail = requests.get(inventory["circleci_nomad_address"] + "/v1/node/" + node["ID"], timeout=10).json()
        nodes[detail["Attributes"].get("unique.platform.aws.instance-id")] = (node["Status"], node["SchedulingEligibility"])
    return images, nodes, group["DesiredCapacity"]


def test_failing_migrator_then_unconfirmed_cleanup_then_fixed_confirmed_migration_then_4x_refused(lab_up, run, secrets_file, tmp_path):
    lab = lab_up("aws-3.4-migrator-fails")
    # The 3.x Nomad clients' group: the migration rolls them onto its launch template's newer version.
    roll = ("-e", "circleci_migrate_nomad_client_group=%s" % yaml.safe_load(
        open(lab.files["vars"], encoding="utf-8"))["circleci_lab_nomad_client_group"])
    old_images, old_nodes, desired = nomad_clients(lab)
    assert len(old_images) == desired == 2 and all(old_nodes[i] == ("ready", "eligible") for i in old_images)
    pvc_uid = kubectl(run, lab, "get", "pvc", "data-postgresql-0")["metadata"]["uid"]
    work = secrets_file.parent / "work" / "circleci-server"
    values_file = work / "values-4.0.yaml"
    cluster_passwords = {key: secret_data(run, lab, key[0])[key[1]] for key in CARRIED}
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
    #    of no return. Pointed at values that lack the Postgres password, the module refuses, even confirmed.
    unconfirmed = migrate(run, lab, secrets_file, "--tags", "kots_cleanup", check=False)
    assert unconfirmed.returncode != 0
    assert "re-run with -e migrate_3_to_4_confirm_kots_cleanup=true" in unconfirmed.stdout
    assert "StatefulSet/kotsadm-minio, StatefulSet/kotsadm-postgres" in unconfirmed.stdout
    lacking = tmp_path / "values-without-postgres-password.yaml"
    lacking.write_text(yaml.safe_dump({key: value for key, value in yaml.safe_load(values_file.read_text()).items()
                                       if key != "postgresql"}))
    lab.admin.clear_requests()
    outcome = modules(run, lab, tmp_path, "cleanup", values_file=str(lacking))
    assert "does not carry the 3.x datastore passwords: postgresql.auth.postgresPassword (missing" in outcome["cleanup"]
    assert lab.admin.requests() == []
    assert kubectl(run, lab, "get", "statefulset", "-l", "kots.io/kotsadm=true")["items"]
    assert release(run, lab)[-1]["chart"] == "circleci-server-3.4.8"

    # 4. Fixed (another migrator image, the failed Job replaced) and confirmed: migrated to 4.0.6, with -vvvv and
    #    --diff, and no secret in the output.
    first = migrate(run, lab, secrets_file, *FIXED, *CONFIRM, *NOMAD_OUTPUTS, *roll, "--diff", "-vvvv")
    history = release(run, lab)
    assert history[-1]["chart"] == "circleci-server-4.0.6" and history[-1]["status"] == "deployed"
    # The release diff was shown before the point of no return and the upgrade.
    assert first.stdout.index("release_diff : Show what the upgrade will change") < first.stdout.index("kots_cleanup : Clean up KOTS") \
        < first.stdout.index("helm_upgrade : Upgrade the release")
    # The passwords in the values file, and in the 4.0 chart's postgresql Secret, are the cluster's 3.x ones.
    written = yaml.safe_load(values_file.read_text())
    for key, path in CARRIED.items():
        assert dig(written, path) == cluster_passwords[key], path
    assert secret_data(run, lab, "postgresql")["postgres-password"] == cluster_passwords[("postgresql", "postgresql-password")]
    # Adopted by Helm: the KOTS LoadBalancers vm-service and output-processor are now the chart's ClusterIP Services.
    service = kubectl(run, lab, "get", "service", "vm-service")
    assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert service["metadata"]["annotations"]["meta.helm.sh/release-name"] == "circleci-server"
    assert service["spec"]["type"] == "ClusterIP" and "kots.io/app-slug" not in service["metadata"]["labels"]
    proxy = kubectl(run, lab, "get", "service", "circleci-proxy")
    assert proxy["spec"]["type"] == "LoadBalancer"
    assert kubectl(run, lab, "get", "secret", "regcred")["type"] == "kubernetes.io/dockerconfigjson"
    # The migrator's log shown and kept (0600), its completed Job deleted, its connection Secret too.
    log = work / "circle-migrator.log"
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600 and "Successfully applied 1 migration" in log.read_text()
    assert "Successfully applied 1 migration" in first.stdout.split("Show the log of the circle-migrator Job", 1)[1]
    assert not kubectl(run, lab, "get", "job", "-l", "app=circle-migrator")["items"]
    assert kubectl(run, lab, "get", "all,secret,pvc,cm", "-l", "kots.io/kotsadm=true")["items"] == []
    assert not [s for s in kubectl(run, lab, "get", "secret")["items"]
                if s["metadata"]["name"] in ("kotsadm-sessions", "kotsadm-replicated-registry", "circle-migrator-postgres")]
    assert kubectl(run, lab, "get", "pvc", "data-postgresql-0")["metadata"]["uid"] == pvc_uid  # data volume kept
    # DNS: the domain and app.<domain> point at the new load balancer in Route 53.
    address = proxy["status"]["loadBalancer"]["ingress"][0]["hostname"]
    assert route53_records(lab) == {("circleci.acme.example.", "CNAME"): [address],
                                    ("app.circleci.acme.example.", "CNAME"): [address]}
    # Nomad: the clients' Terraform root module (the shared renderer), with the new endpoint, its inputs 0600.
    tfvars = work / "nomad-terraform" / "terraform.tfvars.json"
    assert json.loads(tfvars.read_text())["server_endpoint"] == "circleci.acme.example:4647"
    assert stat.S_IMODE(os.stat(tfvars).st_mode) == 0o600
    # ... and the mTLS material of its outputs in the values the upgrade applied.
    outputs = json.loads(open(NOMAD_OUTPUTS[1].split("=", 1)[1], encoding="utf-8").read())
    mtls = yaml.safe_load(values_file.read_text())["nomad"]["server"]["rpc"]["mTLS"]
    assert mtls["enabled"] is True and mtls["CACertificate"] and mtls["privateKey"]
    assert mtls == helm_values(run, lab)["nomad"]["server"]["rpc"]["mTLS"]
    key_pem = base64.b64decode(mtls["privateKey"]).decode()
    # The summary: only what is left, the KOTS load balancers 4.0 replaced with the command that deletes them.
    summary = first.stdout.split("migrate_summary : Show the summary", 1)[1]
    assert "circleci-server-traefik (replaced by kong), nomad-server-external (replaced by nomad-server)" in summary
    assert "kubectl -n circleci-server delete service circleci-server-traefik nomad-server-external" in summary
    assert "mTLS from its outputs in the values: yes" in summary and "terraform apply" not in summary
    assert "DNS: create" not in summary
    # The migration's record (kept for a re-run that lost the values file) is listed, with the command that deletes it.
    assert kubectl(run, lab, "get", "secret", "circleci-migrate-3-to-4")["metadata"]["name"]
    assert "kubectl -n circleci-server delete secret circleci-migrate-3-to-4" in summary
    # The Nomad clients rolled, after the upgrade and the DNS step: new instances (the new version's image) that are
    # ready Nomad nodes, the 3.x ones drained and gone, the group back at its size; nothing left about it.
    assert first.stdout.index("migrate_dns : Point the records at the load balancer in Route 53") \
        < first.stdout.index("nomad_clients : Replace the outdated Nomad clients without killing a job")
    images, nodes, size = nomad_clients(lab)
    assert size == desired and len(images) == desired and not set(images) & set(old_images), (old_images, images)
    assert set(images.values()).isdisjoint(old_images.values())
    assert all(nodes[i] == ("ready", "eligible") for i in images), nodes
    assert all(nodes.get(i, ("down", "ineligible")) == ("down", "ineligible") for i in old_images), nodes  # or purged
    assert "replace the 3.x ones without killing jobs" not in summary
    for secret in [LICENSE, REGISTRY_PASSWORD, mtls["privateKey"], key_pem.splitlines()[1],
                   outputs["nomad_server_key_base64"]["value"]] + list(cluster_passwords.values()):
        assert secret not in first.stdout and secret not in first.stderr  # not even with -vvvv
    assert stat.S_IMODE(os.stat(values_file).st_mode) == 0o600

    # 6. The release is now 4.x: pointed at it as at a 3.x one, the playbook (any target but the installed one) and
    #    the export and cleanup modules refuse, and nothing is written.
    lab.admin.clear_requests()
    refused = migrate(run, lab, secrets_file, *CONFIRM, "-e", "circleci_target_version=4.0.5", check=False)
    assert refused.returncode != 0 and "not a 3.x version" in refused.stdout
    outcome = modules(run, lab, tmp_path, "export", "cleanup", values_file=str(values_file))
    assert "is at chart 4.0.6, not a CircleCI Server 3.x release" in outcome["export"]
    assert "is at chart 4.0.6, not a CircleCI Server 3.x release" in outcome["cleanup"]
    assert lab.admin.requests() == [] and not (tmp_path / "hostile-values.yaml").exists()
    assert len(release(run, lab)) == len(history)

    # 7. Once the operator deleted the migration's record as the summary said, the summary no longer lists it.
    run("kubectl", "-n", "circleci-server", "delete", "secret", "circleci-migrate-3-to-4", env=lab.env)
    summary = migrate(run, lab, secrets_file, "--tags", "summary").stdout.split("migrate_summary : Show the summary", 1)[1]
    assert "circleci-migrate-3-to-4" not in summary and "Reality check" in summary
