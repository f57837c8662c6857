#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: server_install_check
short_description: List every problem of a fresh CircleCI Server 4.x install before anything changes
version_added: 0.1.0
description:
  - Checks the operator's choices (target version, domain, TLS certificate, object storage, cloud, registry and
    GitHub credentials) against what the C(install_preflight) role read (Kubernetes version, the namespace's
    release, helm, the cloud identity, the bucket) and returns every problem, each a sentence that says what
    to do. Reads nothing itself; changes nothing.
  - Exists because these checks cross several sources and formats (the release catalog's Kubernetes ranges,
    X.509 subject alternative names, the chart's storage rules) that no other module combines.
author:
  - circleci.server maintainers (@circleci-server-ansible)
extends_documentation_fragment:
  - circleci.server.read_only
options:
  target_version:
    description: The CircleCI Server version to install.
    type: str
    required: true
  namespace:
    description: The namespace to install into.
    type: str
    required: true
  release:
    description: The Helm release name.
    type: str
    default: circleci-server
  domain:
    description: The FQDN users browse to (C(global.domainName)).
    type: str
    default: ''
  cloud:
    description: The cloud of the cluster.
    type: str
    default: ''
  aws_region:
    description: The AWS region (cloud V(aws)).
    type: str
    default: ''
  gcp_project:
    description: The GCP project (cloud V(gcp)).
    type: str
    default: ''
  tls_certificate:
    description: The TLS certificate in PEM (or base64 of PEM), when the install terminates TLS with it.
    type: str
    default: ''
  tls_private_key:
    description: Its private key in PEM (or base64 of PEM).
    type: str
    default: ''
  bucket:
    description: The object-storage bucket.
    type: str
    default: ''
  create_bucket:
    description: Whether the install creates the bucket when it is missing.
    type: bool
    default: false
  object_storage_s3:
    description: Amazon S3 storage; empty when not used.
    type: dict
    default: {}
    suboptions:
      region:
        description: The bucket's region.
        type: str
      endpoint:
        description: The S3 endpoint (default https://s3.<region>.amazonaws.com).
        type: str
      irsa_role_arn:
        description: The IAM role of the object-storage service account (IRSA).
        type: str
      create_irsa_trust:
        description: Add the service account to the role's trust policy.
        type: bool
        default: false
      access_key:
        description: An IAM access key id (instead of IRSA).
        type: str
      secret_key:
        description: Its secret.
        type: str
      presigned:
        description: Presigned URLs (C(object_storage.s3.presigned)).
        type: bool
      storage_role:
        description: The role assumed when O(object_storage_s3.presigned) is false.
        type: str
  object_storage_gcs:
    description: Google Cloud Storage; empty when not used.
    type: dict
    default: {}
    suboptions:
      workload_identity:
        description: The service account email bound to C([<namespace>/object-storage]).
        type: str
      service_account:
        description: A service account JSON key (an object).
        type: raw
  object_storage_s3_compatible:
    description: An S3-compatible store (MinIO...); empty when not used.
    type: dict
    default: {}
    suboptions:
      endpoint:
        description: Its URL with scheme.
        type: str
      region:
        description: The region it expects, if any.
        type: str
      access_key:
        description: Access key.
        type: str
      secret_key:
        description: Secret key.
        type: str
  chart_repository:
    description: Where the chart comes from (V(oci://...) or a directory of archives).
    type: str
    default: oci://cciserver.azurecr.io/circleci-server
  registry_credentials_given:
    description: Whether both registry username and password are set (their values are not needed here).
    type: bool
    default: false
  github_credentials_given:
    description: Whether both the GitHub OAuth client id and secret are set.
    type: bool
    default: false
  facts:
    description:
      - What the role read; keys V(kubernetes_version), V(release) (as M(circleci.server.server_release_info)
        returns it), V(cluster_error), V(helm_version), V(helm_error), V(aws_identity), V(aws_error),
        V(gcp_credentials), V(bucket_exists) (null when not read), V(secret_problems).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check the install
  circleci.server.server_install_check:
    target_version: 4.10.0
    namespace: circleci-server
    domain: circleci.example.com
    cloud: aws
    aws_region: us-east-1
    bucket: example-circleci
    object_storage_s3: {region: us-east-1, irsa_role_arn: "arn:aws:iam::123456789012:role/circleci-storage"}
    chart_repository: oci://cciserver.azurecr.io/circleci-server
    registry_credentials_given: true
    github_credentials_given: true
    facts: "{{ install_preflight_facts }}"
  register: install_check
"""

RETURN = r"""
problems:
  description: Every problem found, in the order to fix them; empty when the install may go ahead.
  returned: always
  type: list
  elements: str
backend:
  description: The object-storage backend chosen (V(s3), V(gcs), V(s3_compatible)), or empty when not exactly one.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.install_checks import BACKENDS, check_install


def main():
    s3 = dict(region=dict(type="str"), endpoint=dict(type="str"), irsa_role_arn=dict(type="str"),
              create_irsa_trust=dict(type="bool", default=False), access_key=dict(type="str", no_log=True),
              secret_key=dict(type="str", no_log=True), presigned=dict(type="bool"), storage_role=dict(type="str"))
    gcs = dict(workload_identity=dict(type="str"), service_account=dict(type="raw", no_log=True))
    compatible = dict(endpoint=dict(type="str"), region=dict(type="str"), access_key=dict(type="str", no_log=True),
                      secret_key=dict(type="str", no_log=True))
    module = AnsibleModule(argument_spec=dict(
        target_version=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        release=dict(type="str", default="circleci-server"),
        domain=dict(type="str", default=""),
        cloud=dict(type="str", default=""),
        aws_region=dict(type="str", default=""),
        gcp_project=dict(type="str", default=""),
        tls_certificate=dict(type="str", default=""),
        tls_private_key=dict(type="str", default="", no_log=True),
        bucket=dict(type="str", default=""),
        create_bucket=dict(type="bool", default=False),
        object_storage_s3=dict(type="dict", default={}, options=s3),
        object_storage_gcs=dict(type="dict", default={}, options=gcs),
        object_storage_s3_compatible=dict(type="dict", default={}, options=compatible),
        chart_repository=dict(type="str", default="oci://cciserver.azurecr.io/circleci-server"),
        registry_credentials_given=dict(type="bool", default=False),
        github_credentials_given=dict(type="bool", default=False),
        facts=dict(type="dict", default={}),
    ), supports_check_mode=True)
    params = dict(module.params)
    for name in BACKENDS:
        # suboption defaults make an unused backend look used: keep only what the operator set
        params["object_storage_" + name] = {k: v for k, v in (params["object_storage_" + name] or {}).items()
                                            if v not in (None, False, "")}
    params.update(registry_username=params["registry_credentials_given"],
                  registry_password=params["registry_credentials_given"],
                  github_client_id=params["github_credentials_given"],
                  github_client_secret=params["github_credentials_given"])
    problems = check_install(params, params["facts"])
    chosen = [name for name in BACKENDS if params["object_storage_" + name]]
    module.exit_json(changed=False, problems=problems, backend=chosen[0] if len(chosen) == 1 else "")


if __name__ == "__main__":
    main()
