"""upgrade.yml (any 4.x to the newest, hop by hop) in the reliability suite (suite.py: what each proof shows) on the
lab's aws-4.6 scenario: 4.6.6 with MongoDB 3.6, so the path is 4.7.15, 4.8.12, the MongoDB chain, 4.9.5, 4.10.0.
The lab's Kubernetes (1.27) is inside no single range of that path: the runs widen the later ranges as an operator
does when CircleCI revises them (circleci_kubernetes_overrides); one bad input shows the real ranges refused."""
from __future__ import annotations

import base64
import gzip
import json

from .suite import SPEC, BadInput, Playbook, ReliabilityProofs, Step, bad_versions, server_version_filter

KUBERNETES_OVERRIDES = {"4.7": "1.27-1.33", "4.8": "1.27-1.35", "4.9": "1.27-1.35", "4.10": "1.27-1.35"}
# Each hop's first write is helm's release record: the fault fires at the next hop not done yet.
RELEASE_RECORD = r"^/api/v1/namespaces/circleci-server/secrets$"


def end_state(lab, output) -> None:
    """Every hop once, in order (helm's release history), and 4.10.0 deployed."""
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel
    api = client.CoreV1Api(config.new_client_from_config(config_file=lab.files["kubeconfig"]))
    versions = {}
    for secret in api.list_namespaced_secret("circleci-server", label_selector="owner=helm").items:
        release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
        versions[int(secret.metadata.labels["version"])] = (release["chart"]["metadata"]["version"], secret.metadata.labels["status"])
    assert [v for _r, (v, _s) in sorted(versions.items())] == ["4.6.6", "4.7.15", "4.8.12", "4.9.5", "4.10.0"], versions
    assert sorted(versions.items())[-1][1][1] == "deployed"
    assert "4.10.0" in output


def every_hop_planned(runner, output) -> None:
    """The check run plans every hop of the path and the MongoDB chain before them (tests/integration/upgrade_path
    relies on it: --check of the whole path)."""
    del runner
    for line in ("Hop 1/4: 4.6.6 -> 4.7.15", "Hop 2/4: 4.7.15 -> 4.8.12", "Hop 3/4: 4.8.12 -> 4.9.5",
                 "Hop 4/4: 4.9.5 -> 4.10.0", "this run upgrades it: 4.0 -> 4.2 -> 4.4",
                 "this run upgrades it: 5.0 -> 6.0 -> 7.0"):
        assert line in output, line
    for version in ("4.7.15", "4.8.12", "4.9.5", "4.10.0"):
        assert "TASK [Upgrade the release to %s]" % version in output, "each hop is planned in check mode: %s" % version


ENTRY = Playbook(
    name="upgrade",
    playbook="playbooks/upgrade.yml",
    alias="circleci.server.upgrade",
    scenario="aws-4.6",
    argument_spec=("inputs", "upgrade"),
    # "v4.10.0": a leading v is a version too, normalised once by the server_version filter (every run gives it so).
    extra_vars={"circleci_kubernetes_overrides": KUBERNETES_OVERRIDES, "circleci_nomad_terraform_version": "4.10.0",
                "circleci_work_dir": "{tmp}/work", "circleci_upgrade_mongodb": True, "circleci_target_version": "v4.10.0"},
    secret_lab_vars=(("registry_credentials", "circleci_registry_password"),),
    values_file_secrets=True,
    operator_files=("values",),
    mutating_steps=(
        Step("hop-4.7", "kube", ("POST",), RELEASE_RECORD, writes_once=False),
        Step("hop-4.8", "kube", ("POST",), RELEASE_RECORD, writes_once=False),
        Step("hop-4.9", "kube", ("POST",), RELEASE_RECORD, writes_once=False),
        Step("hop-4.10", "kube", ("POST",), RELEASE_RECORD, writes_once=False),
    ),
    rerun_allowed_writes=(r"^PATCH ",),
    version_filter=server_version_filter,
    after_check=every_hop_planned,
    verify=end_state,
    # An empty target is the newest release of the catalog, not a bad input.
    bad_inputs=tuple(bad for bad in bad_versions("circleci_target_version") if not bad.id.endswith("-empty")) + (
        BadInput("cloud-azure", {"circleci_cloud": "azure"}, r"circleci_cloud must be one of: aws, gcp", SPEC),
        BadInput("terminate-leftover-vms-maybe", {"circleci_terminate_leftover_vms": "maybe"},
                 r"circleci_terminate_leftover_vms.*not a valid boolean", SPEC),
        BadInput("require-idle-2", {"circleci_require_idle": "2"}, r"circleci_require_idle.*not a valid boolean", SPEC),
        BadInput("upgrade-mongodb-maybe", {"circleci_upgrade_mongodb": "maybe"}, r"circleci_upgrade_mongodb.*not a valid boolean", SPEC),
        BadInput("kubernetes-overrides-string", {"circleci_kubernetes_overrides": "4.7"},
                 r"circleci_kubernetes_overrides.*unable to convert to dict", SPEC),
        BadInput("kubernetes-overrides-list", {"circleci_kubernetes_overrides": ["4.7"]},
                 r"circleci_kubernetes_overrides.*unable to convert to dict", SPEC),
        # End to end: the inputs' spec first, then the preflight of the whole path (it reads the lab).
        BadInput("cloud-azure-end-to-end", {"circleci_cloud": "azure"}, r"circleci_cloud must be one of"),
        BadInput("real-kubernetes-ranges", {"circleci_kubernetes_overrides": {}}, r"Kubernetes 1\.27 is outside 1\.31-1\.31"),
        BadInput("target-not-in-catalog", {"circleci_target_version": "4.11.0"}, r"4\.11\.0"),
        BadInput("target-lower-than-installed", {"circleci_target_version": "4.5.0"}, r"4\.5\.0"),
        BadInput("target-prerelease", {"circleci_target_version": "4.10.0-rc1"}, r"4\.10\.0-rc1"),
        BadInput("namespace-missing", {"circleci_namespace": "no-such-namespace"}, r"no-such-namespace"),
        BadInput("release-missing", {"circleci_release_name": "no-such-release"}, r'No helm release "no-such-release"'),
        BadInput("kubeconfig-missing", {"circleci_kubeconfig": "/nonexistent/kubeconfig"}, r"/nonexistent/kubeconfig"),
        BadInput("registry-login-refused", {"circleci_registry_password": "lab-fake-wrong-password"}, r"helm registry login"),
    ),
)


class TestUpgrade(ReliabilityProofs):
    entry = ENTRY
