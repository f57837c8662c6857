# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""install.yml refuses bad inventories in its preflight, before any change: one lab (aws-empty, plus a release
in another namespace for the "existing release" case), one playbook run with one host per bad inventory; each
host fails with a message that says what to do, and the lab's request log holds no write of that run."""
from __future__ import annotations

import datetime
import json
import os
import re
import subprocess

import pytest
import yaml

from tests.integration.conftest import REPO_ROOT

PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")
CANARIES = ("CANARY-vault-1b7e", "CANARY-registry-4d2f", "CANARY-github-8a3c")
SECRETS = {"circleci_escrow_vault_password": CANARIES[0], "circleci_registry_username": "lab-user",
           "circleci_registry_password": CANARIES[1], "circleci_github_client_id": "lab-client",
           "circleci_github_client_secret": CANARIES[2]}


def _certificate(names):
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(11).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def bad_inventories():
    cert, key = _certificate(["www.acme-install.example"])
    return {
        # host: (variables over the lab's good inventory, what its failure must say)
        "no_domain": ({"circleci_domain": ""}, "No domain: set circleci_domain"),
        "ip_as_domain": ({"circleci_domain": "10.1.2.3"}, "is an IP address"),
        "two_storage_backends": ({"circleci_object_storage_gcs": {"workload_identity": "x@p.iam.gserviceaccount.com"}},
                                 "2 object-storage backends are configured (s3, gcs): set exactly one"),
        "irsa_trust_without_role": ({"circleci_object_storage_s3": {"region": "us-east-1", "create_irsa_trust": True}},
                                    "create_irsa_trust is set without irsa_role_arn"),
        "kubernetes_out_of_range": ({"circleci_target_version": "4.3.9"},
                                    "Kubernetes 1.34 is outside the range CircleCI Server 4.3 supports"),
        "existing_release": ({"circleci_namespace": "taken"}, "use the upgrade playbook"),
        "certificate_wrong_name": ({"circleci_tls_certificate": cert, "circleci_tls_private_key": key},
                                   "but not circleci.acme-install.example and app.circleci.acme-install.example"),
        "bucket_missing": ({"circleci_object_storage_create_bucket": False},
                           "set circleci_object_storage_create_bucket: true"),
        "no_vault_password": ({"circleci_escrow_vault_password": ""}, "circleci_escrow_vault_password is not set"),
        "malformed_session_cookie": ({"circleci_secrets": {"session_cookie_key": "CANARY-short"}},
                                     "must be exactly 16 characters"),
        "gcs_key_as_a_path": ({"circleci_object_storage_s3": {},
                               "circleci_object_storage_gcs": {"service_account": "/keys/gcs.json"}},
                              "must be the JSON key as an object"),
        "unknown_target": ({"circleci_target_version": "4.11.0"}, "not in this collection's release catalog"),
        "no_github_app": ({"circleci_github_client_secret": ""}, "callback URL https://circleci.acme-install.example/auth/github"),
        "s3_compatible_without_scheme": ({"circleci_object_storage_s3": {},
                                          "circleci_object_storage_s3_compatible": {"endpoint": "minio:9000",
                                                                                    "access_key": "lab-minio-access",
                                                                                    "secret_key": "lab-minio-secret-9f"}},
                                         "needs a scheme and a host"),
        "oci_without_registry_credentials": ({"circleci_chart_repository": "oci://cciserver.azurecr.io/circleci-server",
                                              "circleci_registry_password": ""}, "circleci_registry_username"),
    }


@pytest.fixture(scope="module")
def empty_lab(tmp_path_factory, ansible_env):
    """aws-empty, plus a 4.10.0 release in namespace "taken" (seeded before the request log is read)."""
    from tests.lab.charts import NEWEST, chart_path  # pylint: disable=import-outside-toplevel
    state = tmp_path_factory.mktemp("install-lab")
    subprocess.run([PYTHON, "-m", "tests.lab", "up", "aws-empty", "--state-dir", str(state)], cwd=REPO_ROOT,
                   env=ansible_env, check=True, capture_output=True, timeout=300)
    try:
        lab = json.loads((state / "lab.json").read_text())
        helm_home = state / "helm"
        values = state / "taken-values.yaml"
        values.write_text("global: {domainName: other.acme-install.example}\n")
        env = dict(ansible_env, KUBECONFIG=lab["files"]["kubeconfig"], HELM_CACHE_HOME=str(helm_home / "cache"),
                   HELM_CONFIG_HOME=str(helm_home / "config"), HELM_DATA_HOME=str(helm_home / "data"))
        subprocess.run(["helm", "install", "circleci-server", chart_path(NEWEST), "-n", "taken", "--create-namespace",
                        "-f", str(values)], env=env, check=True, capture_output=True, timeout=300)
        yield state, lab
    finally:
        subprocess.run([PYTHON, "-m", "tests.lab", "down", "--state-dir", str(state)], cwd=REPO_ROOT, env=ansible_env,
                       check=False, capture_output=True, timeout=120)


def _requests(lab):
    from tests.lab.admin import LabClient  # pylint: disable=import-outside-toplevel
    return LabClient(lab["endpoints"]["admin"]).requests()


def test_each_bad_inventory_fails_in_preflight_and_writes_nothing(empty_lab, run, tmp_path):
    state, lab = empty_lab
    with open(lab["files"]["vars"], encoding="utf-8") as handle:
        good = yaml.safe_load(handle)
    with open(state / "aws.env", encoding="utf-8") as handle:
        aws_env = dict(line.replace("export ", "", 1).strip().split("=", 1) for line in handle if "=" in line)
    cases = bad_inventories()
    group = dict(good, **SECRETS)
    group.update(ansible_connection="local", ansible_python_interpreter=PYTHON,
                 circleci_install_dir_override=str(tmp_path / "install" / "{{ inventory_hostname }}"))
    inventory = {"all": {"vars": group, "hosts": {name: variables for name, (variables, _msg) in cases.items()}}}
    path = tmp_path / "inventory.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(inventory, handle)
    before = len(_requests(lab))
    proc = run("ansible-playbook", "-i", str(path), str(REPO_ROOT / "playbooks" / "install.yml"),
               "-e", "circleci_hosts=all", "--forks", "16", check=False,
               env={key: value.strip("'\"") for key, value in aws_env.items()})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    writes = [r for r in _requests(lab)[before:] if "dryRun=All" not in r["path"]]
    assert writes == [], "the refused run wrote: %s" % writes[:5]
    assert not (tmp_path / "install").exists(), "a refused run wrote files"
    for canary in CANARIES:
        assert canary not in output
    failures = dict(re.findall(r"fatal: \[(\w+)\]: FAILED! => (\{.*\})", output))
    assert sorted(failures) == sorted(cases), output[-3000:]
    for name, (_variables, expected) in cases.items():
        message = json.loads(failures[name])["msg"]
        assert "Install preflight found" in message and "changed nothing" in message, (name, message)
        assert expected in message, (name, message)
    assert "Stop if any install preflight check failed" in output
    assert "Create the directory of the escrow" not in output      # no host got past the preflight
