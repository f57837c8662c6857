# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks of a fresh CircleCI Server 4.x install, before any change (install-4x.md section 3.2).

``check_install(inputs, facts)`` is pure: ``inputs`` are the operator's choices (domain, storage, TLS...),
``facts`` what the install_preflight role read (Kubernetes version, release, helm, cloud identity,
bucket). It returns every problem, each a sentence that says what is wrong and what to do, so that one
failure lists them all. No sentence contains a secret.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re

from ansible_collections.circleci.server.plugins.module_utils.versions import (
    UnknownRelease,
    VersionError,
    support_report,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - depends on the controller's libraries
    HAS_CRYPTOGRAPHY = False

HELM_MIN_VERSION = (3, 9, 2)
BACKENDS = ("s3", "gcs", "s3_compatible")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_GSA_EMAIL = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def domain_problems(domain):
    """Why ``domain`` is not a usable ``global.domainName`` (an FQDN: no scheme, port, path, IP), or []."""
    domain = (domain or "").strip()
    if not domain:
        return ["No domain: set circleci_domain to the FQDN users will browse to (for example "
                "circleci.example.com); the chart requires global.domainName."]
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return ["circleci_domain is an IP address (%s): give a DNS name (for example circleci.example.com); "
                "the install serves <domain> and app.<domain> and its certificates are issued for names." % domain]
    except ValueError:
        pass
    if "://" in domain or "/" in domain or ":" in domain:
        return ["circleci_domain %s must be a bare host name, without scheme, port or path (for example "
                "circleci.example.com)." % domain]
    labels = domain.rstrip(".").lower().split(".")
    if len(labels) < 2 or len(domain) > 253 or not all(_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        return ["circleci_domain %s is not a fully qualified domain name: use letters, digits and hyphens in "
                "at least two dot-separated labels (for example circleci.example.com)." % domain]
    return []


def _decode_pem(text):
    """PEM bytes from PEM text or base64 of PEM (the chart's tls.certificate is base64)."""
    raw = (text or "").strip()
    if "-----BEGIN" in raw:
        return raw.encode("ascii", "replace")
    try:
        decoded = base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return b""
    return decoded if b"-----BEGIN" in decoded else b""


def _covers(names, host):
    host = host.lower()
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and host.count(".") == name.count(".") and host.endswith(name[1:]):
            return True
    return False


def certificate_problems(domain, certificate, private_key=None, now=None):
    """Why the TLS certificate does not serve <domain> and app.<domain> (P1 section 6), or []."""
    if not certificate:
        return []
    if not HAS_CRYPTOGRAPHY:
        return ["Checking the TLS certificate needs the cryptography Python library on the controller "
                "(pip install cryptography)."]
    pem = _decode_pem(certificate)
    try:
        cert = x509.load_pem_x509_certificates(pem)[0]
    except (ValueError, IndexError):
        return ["circleci_tls_certificate is not a PEM certificate (nor base64 of one): give the certificate "
                "chain in PEM, leaf first."]
    problems = []
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    missing = [host for host in (domain, "app." + domain) if domain and not _covers(names, host)]
    if missing:
        problems.append("The TLS certificate covers %s but not %s: issue one whose subject alternative names "
                        "include both %s and app.%s (or *.%s as well as %s)." % (
                            ", ".join(names) or "no name", " and ".join(missing), domain, domain, domain, domain))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    if not_after <= now:
        problems.append("The TLS certificate expired on %s: renew it." % not_after.date().isoformat())
    if private_key:
        try:
            key = serialization.load_pem_private_key(_decode_pem(private_key), password=None)
            if key.public_key().public_numbers() != cert.public_key().public_numbers():
                problems.append("circleci_tls_private_key is not the key of circleci_tls_certificate: give the "
                                "matching pair.")
        except (ValueError, TypeError, AttributeError):
            problems.append("circleci_tls_private_key is not an unencrypted PEM private key: give the key of the "
                            "certificate, without a passphrase.")
    elif certificate:
        problems.append("circleci_tls_certificate is given without circleci_tls_private_key: give both, or neither "
                        "(the install then terminates TLS with a self-signed certificate).")
    return problems


def storage_problems(inputs, facts):
    """Exactly one backend, with its provider's keys; the bucket exists or will be created."""
    storage = {name: inputs.get("object_storage_" + name) or {} for name in BACKENDS}
    chosen = [name for name in BACKENDS if storage[name]]
    bucket = inputs.get("bucket") or ""
    problems = []
    variables = ", ".join("circleci_object_storage_" + name for name in BACKENDS)
    if len(chosen) != 1:
        problems.append("%s object-storage backends are configured (%s): set exactly one of %s (the chart "
                        "needs exactly one of object_storage.s3 / object_storage.gcs enabled)." % (
                            "No" if not chosen else len(chosen), ", ".join(chosen) or "none", variables))
    if not bucket:
        problems.append("No bucket: set circleci_object_storage_bucket to the bucket that holds artifacts, test "
                        "results and caches.")
    cloud = inputs.get("cloud")
    s3 = storage["s3"]
    if s3:
        if cloud != "aws":
            problems.append("circleci_object_storage_s3 is Amazon S3, but circleci_cloud is %s: use "
                            "circleci_object_storage_s3_compatible for another S3 API, or the cloud's own "
                            "storage." % cloud)
        irsa = s3.get("irsa_role_arn")
        keys = s3.get("access_key") or s3.get("secret_key")
        if irsa and keys:
            problems.append("circleci_object_storage_s3 has both irsa_role_arn and access keys: choose IRSA "
                            "(recommended) or keys, not both.")
        elif not irsa and not keys:
            problems.append("circleci_object_storage_s3 needs irsa_role_arn (an IAM role trusting "
                            "system:serviceaccount:<namespace>:object-storage) or access_key and secret_key.")
        elif keys and not (s3.get("access_key") and s3.get("secret_key")):
            problems.append("circleci_object_storage_s3 needs both access_key and secret_key.")
        if irsa and not _ROLE_ARN.match(str(irsa)):
            problems.append("circleci_object_storage_s3.irsa_role_arn %s is not an IAM role ARN "
                            "(arn:aws:iam::<account>:role/<name>)." % irsa)
        if s3.get("create_irsa_trust") and not irsa:
            problems.append("circleci_object_storage_s3.create_irsa_trust is set without irsa_role_arn: name "
                            "the IAM role whose trust policy should allow the object-storage service account.")
        if not s3.get("region"):
            problems.append("circleci_object_storage_s3 needs region (the bucket's AWS region).")
    gcs = storage["gcs"]
    if gcs:
        if cloud != "gcp":
            problems.append("circleci_object_storage_gcs is Google Cloud Storage, but circleci_cloud is %s." % cloud)
        identity = gcs.get("workload_identity")
        key = gcs.get("service_account")
        if identity and key:
            problems.append("circleci_object_storage_gcs has both workload_identity and service_account: choose "
                            "Workload Identity (recommended) or a key, not both.")
        elif not identity and not key:
            problems.append("circleci_object_storage_gcs needs workload_identity (a service account email bound "
                            "to [<namespace>/object-storage]) or service_account (its JSON key).")
        if identity and not _GSA_EMAIL.match(str(identity)):
            problems.append("circleci_object_storage_gcs.workload_identity %s is not a service account email "
                            "(<name>@<project>.iam.gserviceaccount.com)." % identity)
        if key and not (isinstance(key, dict) and key.get("type") == "service_account"):
            problems.append("circleci_object_storage_gcs.service_account must be the JSON key as an object "
                            "(with \"type\": \"service_account\"), not a string or a path.")
    compatible = storage["s3_compatible"]
    if compatible:
        endpoint = str(compatible.get("endpoint") or "")
        if not re.match(r"^https?://[^/\s]+", endpoint):
            problems.append("circleci_object_storage_s3_compatible.endpoint %s needs a scheme and a host "
                            "(for example https://minio.example.com:9000)." % (endpoint or "(empty)"))
        if not (compatible.get("access_key") and compatible.get("secret_key")):
            problems.append("circleci_object_storage_s3_compatible needs access_key and secret_key.")
    if bucket and chosen == ["s3"] and cloud == "aws":
        exists = facts.get("bucket_exists")
        if exists is False and not inputs.get("create_bucket"):
            problems.append("The S3 bucket %s does not exist (or these credentials cannot see it): create it, or "
                            "set circleci_object_storage_create_bucket: true to have the install create it with "
                            "versioning on." % bucket)
    return problems


def provider_problems(inputs, facts):
    problems = []
    cloud = inputs.get("cloud")
    if cloud not in ("aws", "gcp"):
        problems.append("circleci_cloud is %s: set it to aws or gcp." % (cloud or "not set"))
    elif cloud == "aws" and not facts.get("aws_identity"):
        problems.append("No usable AWS credentials (sts:GetCallerIdentity failed: %s): set AWS_PROFILE or "
                        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and circleci_aws_region." % (
                            facts.get("aws_error") or "no answer"))
    elif cloud == "gcp" and not facts.get("gcp_credentials"):
        problems.append("No GCP credentials: set circleci_gcp_service_account_file to a service account key, or "
                        "GOOGLE_APPLICATION_CREDENTIALS, or circleci_gcp_auth_kind: application with gcloud's "
                        "application default credentials.")
    if cloud == "gcp" and not inputs.get("gcp_project"):
        problems.append("circleci_gcp_project is not set: name the GCP project of the cluster.")
    if cloud == "aws" and not inputs.get("aws_region"):
        problems.append("circleci_aws_region is not set: name the AWS region of the cluster.")
    return problems


def cluster_problems(inputs, facts):
    problems = []
    if facts.get("cluster_error"):
        return ["Cannot read the cluster: %s" % facts["cluster_error"]]
    target = inputs.get("target_version")
    kubernetes = facts.get("kubernetes_version")
    try:
        report = support_report(target, kubernetes or None)
        problems.extend(report["problems"])
    except (UnknownRelease, VersionError, ValueError) as exc:
        problems.append("circleci_target_version %s: %s" % (target, exc))
    release = facts.get("release") or {}
    if release.get("exists"):
        problems.append(
            "The namespace %s already holds the Helm release %s (CircleCI Server %s, %s): install.yml installs "
            "once; to move it to %s, use the upgrade playbook, or remove that release first." % (
                inputs.get("namespace"), inputs.get("release"), release.get("chart_version") or "?",
                release.get("status") or "?", target))
    return problems


def helm_problems(facts):
    found = facts.get("helm_version") or ""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", found)
    if not match:
        return ["helm 3 (3.9.2 or later) is needed but was not found (%s): install it "
                "(https://helm.sh/docs/intro/install/) or set circleci_helm_binary to its path." % (
                    facts.get("helm_error") or "no output")]
    version = tuple(int(part) for part in match.groups())
    if version < HELM_MIN_VERSION or version[0] != 3:
        return ["helm %s is found, but the install needs helm 3.9.2 or later (and not helm 4): upgrade it." % (
            ".".join(match.groups()))]
    return []


def registry_problems(inputs):
    if str(inputs.get("chart_repository") or "").startswith("oci://") and not (
            inputs.get("registry_username") and inputs.get("registry_password")):
        return ["The chart comes from %s but circleci_registry_username / circleci_registry_password are not "
                "set: give the credentials CircleCI sent you (keep the password in a vault), or point "
                "circleci_chart_repository at a directory of chart archives." % inputs.get("chart_repository")]
    return []


def github_problems(inputs):
    if not (inputs.get("github_client_id") and inputs.get("github_client_secret")):
        return ["circleci_github_client_id and circleci_github_client_secret are needed: register a GitHub OAuth "
                "app with the callback URL https://%s/auth/github and give its id and secret." % (
                    inputs.get("domain") or "<domain>")]
    return []


def check_install(inputs, facts):
    """Every problem of a fresh install, in the order an operator fixes them; [] when it may go ahead."""
    problems = []
    problems += cluster_problems(inputs, facts)
    problems += helm_problems(facts)
    problems += domain_problems(inputs.get("domain"))
    if not domain_problems(inputs.get("domain")):
        problems += certificate_problems(inputs.get("domain"), inputs.get("tls_certificate"),
                                         inputs.get("tls_private_key"), now=facts.get("now"))
    problems += provider_problems(inputs, facts)
    problems += storage_problems(inputs, facts)
    problems += registry_problems(inputs)
    problems += github_problems(inputs)
    problems += list(facts.get("secret_problems") or [])
    return problems
