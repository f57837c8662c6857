# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""install_checks: a good install passes; each bad input gives a problem that says what to do."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.circleci.server.plugins.module_utils import install_checks as ic

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
GOOD = {"target_version": "4.10.0", "namespace": "circleci-server", "release": "circleci-server",
        "domain": "circleci.example.com", "cloud": "aws", "aws_region": "us-east-1", "bucket": "b",
        "object_storage_s3": {"region": "us-east-1", "irsa_role_arn": "arn:aws:iam::123456789012:role/storage"},
        "chart_repository": "/charts", "github_client_id": "id", "github_client_secret": "s"}
FACTS = {"kubernetes_version": "1.34.2", "release": {"exists": False}, "helm_version": "v3.17.3+g", "aws_identity": "1",
         "bucket_exists": True, "now": NOW}


def certificate(names, days=365, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(7).not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key


def problems(facts=None, **changes):
    inputs = dict(GOOD)
    inputs.update(changes)
    return ic.check_install(inputs, dict(FACTS, **(facts or {})))


def test_good_install_passes():
    assert problems() == []
    cert, key = certificate(["circleci.example.com", "*.circleci.example.com"])
    assert problems(tls_certificate=cert, tls_private_key=key) == []


BAD = {
    "no domain": (dict(domain=""), None, "No domain: set circleci_domain"),
    "IP as domain": (dict(domain="10.0.0.12"), None, "is an IP address"),
    "domain with scheme": (dict(domain="https://circleci.example.com"), None, "bare host name"),
    "single-label domain": (dict(domain="circleci"), None, "not a fully qualified domain name"),
    "two storage backends": (dict(object_storage_gcs={"workload_identity": "a@b.iam.gserviceaccount.com"}), None,
                             "2 object-storage backends"),
    "no storage backend": (dict(object_storage_s3={}), None, "No object-storage backends"),
    "IRSA trust without role": (dict(object_storage_s3={"region": "us-east-1", "create_irsa_trust": True,
                                                        "access_key": "A", "secret_key": "B"}), None,
                                "create_irsa_trust is set without irsa_role_arn"),
    "S3 without IRSA or keys": (dict(object_storage_s3={"region": "us-east-1"}), None, "needs irsa_role_arn"),
    "GCS key as a string": (dict(cloud="gcp", gcp_project="p", object_storage_s3={},
                                 object_storage_gcs={"service_account": "/path/key.json"}), {"gcp_credentials": True},
                            "must be the JSON key as an object"),
    "bad Kubernetes version": ({}, {"kubernetes_version": "1.29.4"}, "outside the range"),
    "existing release": ({}, {"release": {"exists": True, "chart_version": "4.9.5", "status": "deployed"}},
                         "use the upgrade playbook"),
    "certificate for the wrong name": (dict(tls_certificate=certificate(["other.example.com"])[0],
                                            tls_private_key=certificate(["x.example.com"])[1]), None,
                                       "but not circleci.example.com and app.circleci.example.com"),
    "missing bucket": ({}, {"bucket_exists": False}, "set circleci_object_storage_create_bucket: true"),
    "no AWS credentials": ({}, {"aws_identity": "", "aws_error": "InvalidClientTokenId"}, "No usable AWS credentials"),
    "no helm": ({}, {"helm_version": "", "helm_error": "No such file"}, "helm 3 (3.9.2 or later) is needed"),
    "unknown target": (dict(target_version="4.11.0"), None, "not in this collection's release catalog"),
    "registry credentials": (dict(chart_repository="oci://cciserver.azurecr.io/circleci-server"), None,
                             "circleci_registry_username"),
    "no GitHub app": (dict(github_client_secret=""), None, "https://circleci.example.com/auth/github"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_each_bad_input_is_reported(name):
    changes, facts, expected = BAD[name]
    found = problems(facts, **changes)
    assert any(expected in p for p in found), found


def test_all_problems_at_once_and_no_secret_in_them():
    found = problems({"kubernetes_version": "1.29.4", "bucket_exists": False}, domain="10.1.2.3",
                     object_storage_s3={"region": "us-east-1", "access_key": "AKIACANARY", "secret_key": "CANARYsecret"},
                     object_storage_gcs={"workload_identity": "nope"})
    assert len(found) >= 5 and "CANARY" not in " ".join(found)


def test_certificate_details():
    cert, key = certificate(["circleci.example.com", "app.circleci.example.com"], days=-1)
    assert any("expired" in p for p in ic.certificate_problems("circleci.example.com", cert, key, now=NOW))
    other_key = certificate(["x"])[1]
    assert any("not the key" in p for p in ic.certificate_problems("circleci.example.com", certificate(
        ["circleci.example.com", "app.circleci.example.com"])[0], other_key, now=NOW))
    assert any("without circleci_tls_private_key" in p for p in ic.certificate_problems(
        "circleci.example.com", cert, "", now=NOW))
    assert ic.certificate_problems("circleci.example.com", "not a cert", "")[0].startswith("circleci_tls_certificate is not")
    # a wildcard covers one label only
    assert not ic._covers(["*.example.com"], "app.circleci.example.com")
    assert ic._covers(["*.circleci.example.com"], "app.circleci.example.com")
