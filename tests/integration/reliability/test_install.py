"""install.yml in the reliability suite (suite.py: what each proof shows) on the lab's aws-empty scenario (an
empty cluster, the cloud account ready). Its end-to-end bad inputs are bad inventories, one host each in one run:
install.yml's preflight lists every problem of a host before it stops, all hosts at the same task."""
from __future__ import annotations

import datetime
from pathlib import Path

from .suite import SPEC, BadInput, Playbook, ReliabilityProofs, Step


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


def release_in_another_namespace(lab, run) -> None:
    """A 4.10.0 release in namespace "taken", for the "existing release" bad input."""
    from tests.lab.charts import NEWEST, chart_path  # pylint: disable=import-outside-toplevel
    state = lab.state["state_dir"]
    values = "%s/taken-values.yaml" % state
    with open(values, "w", encoding="utf-8") as handle:
        handle.write("global: {domainName: other.acme-install.example}\n")
    helm = {"KUBECONFIG": lab.files["kubeconfig"], "HELM_CACHE_HOME": state + "/helm/cache",
            "HELM_CONFIG_HOME": state + "/helm/config", "HELM_DATA_HOME": state + "/helm/data"}
    run("helm", "install", "circleci-server", chart_path(NEWEST), "-n", "taken", "--create-namespace", "-f", values, env=helm)


def end_state(lab, output) -> None:
    """The release is deployed at the catalog's newest, the escrow holds the secrets (encrypted), the summary says
    where they are."""
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel
    api = config.new_client_from_config(config_file=lab.files["kubeconfig"])
    releases = client.CoreV1Api(api).list_namespaced_secret("circleci-server", label_selector="owner=helm,status=deployed").items
    assert len(releases) == 1, [r.metadata.name for r in releases]
    assert "secrets-escrow.vault" in output, output[-3000:]


def no_install_dir_beside_the_inventory(runner, _output) -> None:
    """The check run answered the install-dir and escrow questions with "" (AWX sends "" for a question left
    unanswered): the default is <inventory dir>/circleci-install, and check mode creates nothing there."""
    assert not (Path(runner.lab.files["inventory"]).parent / "circleci-install").exists()


CERT, KEY = _certificate(["www.acme-install.example"])

ENTRY = Playbook(
    name="install",
    playbook="playbooks/install.yml",
    alias="circleci.server.install",
    scenario="aws-empty",
    argument_spec=("inputs", "install"),
    extra_vars={"circleci_install_dir_override": "{tmp}/circleci-install", "install_helm_ready_delay": 1},
    secret_vars={"circleci_escrow_vault_password": "CANARY-vault-5d1e9a", "circleci_registry_username": "lab-registry-user",
                 "circleci_registry_password": "CANARY-registry-7c2a41", "circleci_github_client_id": "lab-github-client-id",
                 "circleci_github_client_secret": "CANARY-github-9e4b27", "circleci_license": "CANARY-license-3f8d60",
                 "circleci_secrets": {"postgres_password": "CANARYpostgres0a9f3c"}},
    extra_canaries=("CANARYpostgres0a9f3c",),
    mutating_steps=(
        Step("bucket", "aws", ("PUT",), r"^s3/acme-install-circleci-data$"),
        Step("irsa-trust", "aws", ("POST",), r"^iam/UpdateAssumeRolePolicy$"),
        Step("namespace", "kube", ("POST",), r"^/api/v1/namespaces$"),
        # The Secrets the chart would otherwise generate: one write each (6), so not once.
        Step("chart-secrets", "kube", ("POST",), r"^/api/v1/namespaces/circleci-server/secrets$", writes_once=False),
        # helm's first write of the install.
        Step("helm-install", "kube", ("POST",), r"^/api/v1/namespaces/circleci-server/serviceaccounts\?fieldManager=helm$"),
    ),
    # The install directory the operator named: its values.yaml (0600) holds the secrets by design.
    operator_dirs=("{tmp}/circleci-install",),
    prepare=release_in_another_namespace,
    # kubernetes.core's apply of an unchanged object still PATCHes it (server-side: no change).
    rerun_allowed_writes=(r"^PATCH ",),
    verify=end_state,
    awx_extravars={"circleci_install_dir_override": "", "circleci_escrow_file_override": ""},
    after_check=no_install_dir_beside_the_inventory,
    bad_inputs_as_hosts=True,
    bad_inputs=(
        BadInput("create-bucket-maybe", {"circleci_object_storage_create_bucket": "maybe"},
                 r"circleci_object_storage_create_bucket.*not a valid boolean", SPEC),
        BadInput("s3-as-a-string", {"circleci_object_storage_s3": "bucket"},
                 r"circleci_object_storage_s3.*unable to convert to dict", SPEC),
        BadInput("secrets-as-a-list", {"circleci_secrets": ["postgres_password"]}, r"circleci_secrets.*unable to convert to dict", SPEC),
        BadInput("cloud-azure", {"circleci_cloud": "azure"}, r"circleci_cloud must be one of: aws, gcp", SPEC),
        # End to end: one host each, in one run.
        BadInput("no-domain", {"circleci_domain": ""}, r"No domain: set circleci_domain"),
        BadInput("ip-as-domain", {"circleci_domain": "10.1.2.3"}, r"is an IP address"),
        BadInput("two-storage-backends", {"circleci_object_storage_gcs": {"workload_identity": "x@p.iam.gserviceaccount.com"}},
                 r"2 object-storage backends are configured \(s3, gcs\): set exactly one"),
        BadInput("irsa-trust-without-role", {"circleci_object_storage_s3": {"region": "us-east-1", "create_irsa_trust": True}},
                 r"create_irsa_trust is set without irsa_role_arn"),
        BadInput("kubernetes-out-of-range", {"circleci_target_version": "4.3.9"},
                 r"Kubernetes 1\.34 is outside the range CircleCI Server 4\.3 supports"),
        BadInput("existing-release", {"circleci_namespace": "taken"}, r"use the upgrade playbook"),
        BadInput("certificate-wrong-name", {"circleci_tls_certificate": CERT, "circleci_tls_private_key": KEY},
                 r"but not circleci\.acme-install\.example and app\.circleci\.acme-install\.example"),
        BadInput("bucket-missing", {"circleci_object_storage_create_bucket": False}, r"set circleci_object_storage_create_bucket: true"),
        BadInput("no-vault-password", {"circleci_escrow_vault_password": ""}, r"circleci_escrow_vault_password is not set"),
        BadInput("malformed-session-cookie", {"circleci_secrets": {"session_cookie_key": "CANARY-short"}}, r"must be exactly 16 characters"),
        BadInput("gcs-key-as-a-path", {"circleci_object_storage_s3": {}, "circleci_object_storage_gcs": {"service_account": "/keys/gcs.json"}},
                 r"must be the JSON key as an object"),
        BadInput("unknown-target", {"circleci_target_version": "4.11.0"}, r"not in this collection's release catalog"),
        BadInput("no-github-app", {"circleci_github_client_secret": ""}, r"callback URL https://circleci\.acme-install\.example/auth/github"),
        BadInput("s3-compatible-without-scheme", {"circleci_object_storage_s3": {}, "circleci_object_storage_s3_compatible": {
            "endpoint": "minio:9000", "access_key": "lab-minio-access", "secret_key": "lab-minio-secret-9f"}}, r"needs a scheme and a host"),
        BadInput("oci-without-registry-credentials", {"circleci_chart_repository": "oci://cciserver.azurecr.io/circleci-server",
                                                      "circleci_registry_password": ""}, r"circleci_registry_username"),
    ),
)


class TestInstall(ReliabilityProofs):
    entry = ENTRY
