"""upgrade-4.3.yml in the reliability suite (suite.py: what each proof shows) on the lab's aws-4.2 scenario."""
from __future__ import annotations

import base64
import gzip
import json
import re

import boto3

from .suite import SPEC, BadInput, Playbook, ReliabilityProofs, Step, bad_versions, server_version_filter


def no_plan_left(runner, output) -> None:
    """The check-mode plan (the migrated values, every secret in clear) does not outlive the run; it named the
    cloud identity move and the port."""
    for expected in ("machine_provisioner", "2376", "machine-provisioner"):
        assert expected in output
    assert not (runner.home / ".circleci-server").exists(), "the check-mode plan was left in HOME"
    assert [p.name for p in runner.tmpdir.iterdir() if p.name.startswith("circleci-server-")] == []


def end_state(lab, output) -> None:
    """4.3 is deployed, machine-provisioner has vm-service's cloud identity, port 2376 is closed, DLC's bucket
    versioned; the summary gives the release diff as a sentence and no DLC volumes to delete when there are none."""
    assert re.search(r"Release: \d+ to add, \d+ to change, \d+ to remove", output), output[-3000:]
    assert "DLC volumes" not in output.split("Manual actions left")[-1]
    env = lab.env
    session = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                   aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    trust = boto3.client("iam", **session).get_role(RoleName="circleci-vm")["Role"]["AssumeRolePolicyDocument"]
    (group,) = boto3.client("ec2", **session).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["circleci-vm-service-sg"]}])["SecurityGroups"]
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel
    api = config.new_client_from_config(config_file=lab.files["kubeconfig"])
    workloads = client.AppsV1Api(api).list_namespaced_deployment("circleci-server").items
    deployments = {d.metadata.name for d in workloads}
    assert [d.metadata.name for d in workloads if not d.status.ready_replicas] == [], "not ready"
    releases = client.CoreV1Api(api).list_namespaced_secret("circleci-server", label_selector="owner=helm,status=deployed").items
    versioning = boto3.client("s3", **session).get_bucket_versioning(Bucket="acme-circleci-server-artifacts").get("Status")
    assert versioning == "Enabled", "DLC on S3 needs versioning: enabled by default"
    assert len(releases) == 1 and "machine-provisioner" in deployments and "vm-service" not in deployments
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(releases[0].data["release"]))))
    assert release["chart"]["metadata"]["version"] == "4.3.9"
    with open(lab.files["values"], encoding="utf-8") as handle:
        values = handle.read()
    assert "machine_provisioner:" in values and "\nvm_service:" not in values, "the values file was not migrated in place"
    assert re.search(r"(?m)^#", values), "the values file lost its comments"
    assert sorted(re.findall(r"system:serviceaccount:[\w-]+:[\w-]+", json.dumps(trust))) == [
        "system:serviceaccount:circleci-server:machine-provisioner"]
    assert "sre-breakglass" in json.dumps(trust), "the other subjects of the trust policy stay"
    ports = {p.get("FromPort") for p in group["IpPermissions"]}
    assert 2376 not in ports and 54782 in ports


ENTRY = Playbook(
    name="upgrade-4.3",
    playbook="playbooks/upgrade-4.3.yml",
    alias="circleci.server.upgrade_4_3",
    scenario="aws-4.2",
    argument_spec=("inputs", "upgrade_4_3"),
    # "v4.3.9": a leading v is a version too, normalised once (every run of the suite gives it so).
    extra_vars={"circleci_target_version": "v4.3.9"},
    # The lab's registry credentials (random per lab) reach the playbook through the inventory's group_vars.
    secret_lab_vars=(("registry_credentials", "circleci_registry_password"),),
    values_file_secrets=True,
    # The Tink keyset is JSON: its key material alone must not leak either (e.g. re-serialised).
    extra_canaries=("lab-fake-tink-key-material",),
    operator_files=("values",),
    mutating_steps=(
        Step("bucket-versioning", "aws", ("PUT",), r"^s3/acme-circleci-server-artifacts\?versioning$"),
        Step("trust-policy", "aws", ("POST",), r"^iam/UpdateAssumeRolePolicy$"),
        Step("role-policy", "aws", ("POST",), r"^iam/PutRolePolicy$"),
        # helm's first write of an upgrade: the new release record.
        Step("helm-upgrade", "kube", ("POST",), r"^/api/v1/namespaces/circleci-server/secrets$"),
        Step("security-group", "aws", ("POST",), r"^ec2/RevokeSecurityGroupIngress$"),
    ),
    # kubernetes.core's apply of an unchanged object still PATCHes it (server-side: no change).
    rerun_allowed_writes=(r"^PATCH ",),
    version_filter=server_version_filter,
    after_check=no_plan_left,
    verify=end_state,
    # Without a values file (the release's values): a re-run after success changes nothing either.
    rerun_overrides={"circleci_values_file": ""},
    bad_inputs=tuple(bad_versions("circleci_target_version") + [
        BadInput("cloud-azure", {"circleci_cloud": "azure"}, r"circleci_cloud must be one of: aws, gcp", SPEC),
        BadInput("cloud-upper-case", {"circleci_cloud": "AWS"}, r"circleci_cloud must be one of", SPEC),
        BadInput("terminate-leftover-vms-maybe", {"circleci_terminate_leftover_vms": "maybe"},
                 r"circleci_terminate_leftover_vms.*not a valid boolean", SPEC),
        BadInput("require-idle-2", {"circleci_require_idle": "2"}, r"circleci_require_idle.*not a valid boolean", SPEC),
        # End to end (each one run on the lab): the argument spec is the playbook's first task ...
        BadInput("cloud-azure-end-to-end", {"circleci_cloud": "azure"}, r"circleci_cloud must be one of"),
        # ... then the preflight and the read-only checks, which need the lab.
        BadInput("target-4.4", {"circleci_target_version": "4.4.0"}, r"upgrade-4\.3\.yml upgrades to 4\.3\.x; 4\.4\.0 is not"),
        BadInput("target-lower-than-installed", {"circleci_target_version": "4.2.5"}, r"4\.2\.5"),
        BadInput("target-without-chart", {"circleci_target_version": "4.3.5"}, r"has no circleci-server chart 4\.3\.5"),
        BadInput("values-file-emptied", {"circleci_values_file": "{tmp}/empty-values.yaml"}, r"holds no values",
                 files={"empty-values.yaml": "# emptied by mistake\n"}),
        BadInput("values-file-missing", {"circleci_values_file": "/nonexistent/values.yaml"}, r"/nonexistent/values\.yaml"),
        BadInput("registry-login-refused", {"circleci_registry_password": "lab-fake-wrong-password"}, r"helm registry login"),
        BadInput("jobs-running-and-idle-required", {"circleci_require_idle": True}, r"job\(s\) are running on Nomad"),
        BadInput("chart-directory-missing", {"circleci_chart_repository": "/nonexistent/charts"}, r"/nonexistent/charts"),
    ]),
)


class TestUpgrade43(ReliabilityProofs):
    entry = ENTRY
