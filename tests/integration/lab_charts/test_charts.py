"""The lab's stand-in circleci-server charts, linted and rendered by the real helm with the scenarios' values."""
from __future__ import annotations

import base64
import os
import tarfile

import pytest
import yaml

from tests.lab.charts import VERSIONS, chart_archive, chart_path, parse_version
from tests.lab.scenarios import load_scenario, write_values_file

NAMESPACE = "circleci-server"
COMMON_DEPLOYMENTS = {
    "frontend", "api-service", "contexts-service", "workflows-conductor-event-consumer", "workflows-conductor-grpc",
    "kong", "web-ui", "nginx",
}
DATA_STATEFULSETS = {"nomad-server", "postgresql", "mongodb", "rabbitmq", "redis"}


@pytest.fixture(scope="module")
def values_files(tmp_path_factory):
    """Operator values files of the scenarios (as the lab writes them), and the hand-migrated 4.3 copies."""
    folder = tmp_path_factory.mktemp("values")
    files = {}
    for name in ("aws-4.2", "gcp-4.2", "aws-4.2-vault"):
        files[name] = write_values_file(load_scenario(name), str(folder / ("%s.yaml" % name)))
    for name in ("aws-4.2", "gcp-4.2"):
        files[name + "@4.3"] = load_scenario(name)["helm"]["migrated_values_file"]
    return files


@pytest.fixture(scope="module")
def render(run, values_files):
    """``render(version, values_key)``: the chart rendered with a scenario's values, once per module."""
    cache = {}

    def _render(version, key):
        if (version, key) not in cache:
            cache[version, key] = objects(template(run, version, "-f", values_files[key]).stdout)
        return cache[version, key]
    return _render


def template(run, version, *args, check=True):
    return run("helm", "template", "circleci-server", chart_path(version), "-n", NAMESPACE, *args, check=check)


def objects(manifest: str) -> dict:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(manifest) if doc}


def names(rendered: dict, kind: str) -> set:
    return {name for (k, name) in rendered if k == kind}


def test_chart_path_builds_each_version_once():
    for version in VERSIONS:
        path = chart_path(version)
        assert os.path.basename(path) == "circleci-server"
        with open(os.path.join(path, "Chart.yaml"), encoding="utf-8") as handle:
            chart = yaml.safe_load(handle)
        assert (chart["name"], chart["version"], chart["appVersion"]) == ("circleci-server", version, version)
        assert os.path.isfile(os.path.join(path, "values.schema.json"))
        assert os.path.isfile(os.path.join(path, "templates", "NOTES.txt"))
        assert not [n for n in os.listdir(os.path.join(path, "templates")) if n.endswith(".tpl") and not n.startswith("_")]
        assert chart_path("circleci-server-%s" % version) == path
    assert len({chart_path(v) for v in VERSIONS}) == len(VERSIONS)
    with tarfile.open(chart_archive("4.3.9")) as tar:
        assert "circleci-server/Chart.yaml" in tar.getnames()
    for bad in ("4.1.10", "4.3", "latest"):
        with pytest.raises(ValueError):
            parse_version(bad)


@pytest.mark.parametrize("version,values", [
    ("4.2.5", "aws-4.2"), ("4.2.7", "aws-4.2"), ("4.2.7", "gcp-4.2"),
    ("4.3.9", "aws-4.2@4.3"), ("4.3.9", "gcp-4.2@4.3"),
])
def test_helm_lint_passes_with_scenario_values(run, values_files, version, values):
    proc = run("helm", "lint", "--strict", chart_path(version), "-n", NAMESPACE, "-f", values_files[values])
    assert "0 chart(s) failed" in proc.stdout


def test_42_renders_the_documented_install(render):
    rendered = render("4.2.7", "aws-4.2")
    deployments = names(rendered, "Deployment")
    assert COMMON_DEPLOYMENTS | {"vm-service", "output-processor"} <= deployments
    assert not deployments & {"machine-provisioner", "output-receiver"}
    assert names(rendered, "StatefulSet") == DATA_STATEFULSETS  # Tink migrated: no vault
    claims = {name: [c["metadata"]["name"] for c in doc["spec"].get("volumeClaimTemplates", [])]
              for (kind, name), doc in rendered.items() if kind == "StatefulSet"}
    assert claims["postgresql"] == ["data"] and claims["mongodb"] == ["datadir"] and claims["redis"] == ["redis-data"]

    frontend = rendered["Deployment", "frontend"]
    assert frontend["spec"]["replicas"] == 2
    labels = frontend["spec"]["template"]["metadata"]["labels"]
    assert labels["app"] == "frontend" and labels["layer"] == "application"
    assert labels["app.kubernetes.io/instance"] == "circleci-server" and labels["app.kubernetes.io/version"] == "4.2.7"
    assert rendered["StatefulSet", "postgresql"]["metadata"]["labels"]["layer"] == "data"

    proxy = rendered["Service", "circleci-proxy"]
    assert proxy["spec"]["type"] == "LoadBalancer"
    assert {p["port"] for p in proxy["spec"]["ports"]} == {80, 443, 4647, 3000, 8585}
    assert proxy["metadata"]["labels"]["app"] == "circleci-proxy"

    account = rendered["ServiceAccount", "vm-service"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/circleci-vm"
    providers = yaml.safe_load(rendered["ConfigMap", "vm-service-config"]["data"]["providers.yaml"])
    assert providers["ec2"]["tags"] == ["team", "sre", "cost-center", "ci-1234"]
    assert "accessKey" not in providers["ec2"]
    settings = yaml.safe_load(rendered["ConfigMap", "vm-service-config"]["data"]["settings.yaml"])
    assert settings["dlc_lifespan_days"] == 5 and settings["prescaled"][0]["count"] == 2

    keyset = load_scenario("aws-4.2")["helm"]["values_file"]
    with open(keyset, encoding="utf-8") as handle:
        expected = yaml.safe_load(handle)["tink"]["keyset"]
    assert base64.b64decode(rendered["Secret", "tink"]["data"]["keyset"]).decode() == expected
    assert ("Secret", "vm-service-secret") not in rendered  # IRSA, no IAM keys


def test_vault_statefulset_only_while_tink_is_disabled(run, values_files, render):
    with_vault = render("4.2.7", "aws-4.2-vault")
    vault = with_vault["StatefulSet", "vault"]
    assert [c["metadata"]["name"] for c in vault["spec"]["volumeClaimTemplates"]] == ["data"]
    assert ("Secret", "tink") not in with_vault
    assert with_vault["ConfigMap", "circleci-config"]["data"]["CONTEXTS_ENCRYPTION"] == "vault"
    migrated = render("4.2.7", "aws-4.2")
    assert ("StatefulSet", "vault") not in migrated and ("Service", "vault") not in migrated
    # Tink wins over Vault even when vault.internal is left true
    both = objects(template(run, "4.2.7", "-f", values_files["aws-4.2"], "--set", "vault.internal=true").stdout)
    assert ("StatefulSet", "vault") not in both


@pytest.mark.parametrize("scenario", ["aws-4.2", "gcp-4.2"])
def test_43_rejects_unmigrated_values_naming_vm_service(run, values_files, scenario):
    proc = template(run, "4.3.9", "-f", values_files[scenario], check=False)
    assert proc.returncode != 0
    assert "Additional property vm_service is not allowed" in proc.stderr


def test_43_accepts_hand_migrated_aws_values(render):
    rendered = render("4.3.9", "aws-4.2@4.3")
    deployments = names(rendered, "Deployment")
    assert COMMON_DEPLOYMENTS | {"machine-provisioner", "output-receiver", "docker-provisioner"} <= deployments
    assert not {n for (k, n) in rendered if n.startswith("vm-")}
    assert names(rendered, "StatefulSet") == DATA_STATEFULSETS
    account = rendered["ServiceAccount", "machine-provisioner"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/circleci-vm"
    providers = yaml.safe_load(rendered["ConfigMap", "machine-provisioner-config"]["data"]["providers.yaml"])
    assert providers["ec2"]["tags"] == {"team": "sre", "cost-center": "ci-1234"}
    assert {p["port"] for p in rendered["Service", "circleci-proxy"]["spec"]["ports"]} == {80, 443, 4647}
    assert rendered["StatefulSet", "postgresql"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":12.16.37-7629bfd")


def test_43_accepts_hand_migrated_gcp_values(render):
    rendered = render("4.3.9", "gcp-4.2@4.3")
    providers = yaml.safe_load(rendered["ConfigMap", "machine-provisioner-config"]["data"]["providers.yaml"])
    assert providers["gcp"]["zones"] == ["us-east1-b"] and "zone" not in providers["gcp"]
    annotations = rendered["ServiceAccount", "machine-provisioner"]["metadata"]["annotations"]
    assert annotations == {"iam.gke.io/gcp-service-account": "circleci-server-vm@acme-circleci-prod.iam.gserviceaccount.com"}
    assert rendered["Service", "circleci-proxy"]["spec"]["loadBalancerIP"] == "34.75.10.20"


@pytest.mark.parametrize("setting,message", [
    ('machine_provisioner.providers.ec2.tags=["team","sre"]', "machine_provisioner.providers.ec2.tags: Invalid type"),
    ('machine_provisioner.providers.gcp.zone="us-east1-b"', "Additional property zone is not allowed"),
    ('vm_service={"enabled":true}', "Additional property vm_service is not allowed"),
])
def test_43_rejects_the_42_forms(run, values_files, setting, message):
    proc = template(run, "4.3.9", "-f", values_files["aws-4.2@4.3"], "--set-json", setting, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_42_rejects_machine_provisioner_and_odd_tag_lists(run, values_files):
    proc = template(run, "4.2.7", "-f", values_files["aws-4.2@4.3"], check=False)
    assert proc.returncode != 0 and "Additional property machine_provisioner is not allowed" in proc.stderr
    proc = template(run, "4.2.7", "-f", values_files["aws-4.2"], "--set-json",
                    'vm_service.providers.ec2.tags=["team","sre","orphan"]', check=False)
    assert proc.returncode != 0 and "key, value pairs" in proc.stderr


def test_43_tolerates_the_keys_it_stops_reading(run, values_files):
    """helm_values_migrate leaves vm_scaler (reported) in place: 4.3 must not refuse the migrated file for it."""
    proc = template(run, "4.3.9", "-f", values_files["aws-4.2@4.3"], "--set-json", 'vm_scaler={"prescaled":[]}')
    assert proc.returncode == 0


@pytest.mark.parametrize("version", ["4.2.7", "4.3.9"])
def test_domain_name_is_required(run, version):
    proc = template(run, version, check=False)
    assert proc.returncode != 0 and "global.domainName" in proc.stderr
    proc = template(run, version, "--set", "global.domainName=ci.example.com,sessionCookieKey=tooshort", check=False)
    assert proc.returncode != 0 and "sessionCookieKey" in proc.stderr
    template(run, version, "--set", "global.domainName=ci.example.com")


def test_a_provider_change_shows_in_the_rendered_release(run, values_files, render):
    before = render("4.2.7", "aws-4.2")
    after = objects(template(run, "4.2.7", "-f", values_files["aws-4.2"], "--set-json",
                             'vm_service.providers.ec2.tags=["team","platform"]').stdout)
    assert before["ConfigMap", "vm-service-config"]["data"] != after["ConfigMap", "vm-service-config"]["data"]

    def checksum(rendered):
        return rendered["Deployment", "vm-service"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum(before) != checksum(after)
    assert before["Deployment", "frontend"] == after["Deployment", "frontend"]


def test_iam_keys_land_in_the_provisioner_secret(run, values_files):
    rendered = objects(template(run, "4.3.9", "-f", values_files["aws-4.2@4.3"], "--set",
                                "machine_provisioner.providers.ec2.irsaRole=,"
                                "machine_provisioner.providers.ec2.accessKey=lab-fake-AKIA,"
                                "machine_provisioner.providers.ec2.secretKey=lab-fake-secret").stdout)
    secret = rendered["Secret", "machine-provisioner-secret"]
    assert base64.b64decode(secret["data"]["accessKey"]) == b"lab-fake-AKIA"
    assert "annotations" not in rendered["ServiceAccount", "machine-provisioner"]["metadata"]
    providers = rendered["ConfigMap", "machine-provisioner-config"]["data"]["providers.yaml"]
    assert "lab-fake-secret" not in providers and "lab-fake-AKIA" not in providers


def test_seed_and_upgrade_in_the_lab_cluster(run, tmp_path):
    """The scenario's release steps install into the lab's Kubernetes stand-in; the unmigrated values fail
    the 4.3.9 upgrade; the migrated ones upgrade, leaving PVC data-vault-0."""
    kube = pytest.importorskip("tests.lab.kube")
    from tests.lab.core import FaultInjector, LabClock, RequestLog  # pylint: disable=import-outside-toplevel
    from tests.lab.scenarios import release_steps  # pylint: disable=import-outside-toplevel

    clock = LabClock(factor=60)
    server = kube.KubeApiServer(clock, RequestLog(str(tmp_path / "requests.jsonl"), clock), FaultInjector(),
                                kubernetes_version="1.27.16")
    url = server.start()
    try:
        env = ["env", "KUBECONFIG=%s" % kube.write_kubeconfig(str(tmp_path / "kubeconfig"), url), "HOME=%s" % tmp_path]
        scenario = load_scenario("aws-4.2")
        values_file = str(tmp_path / "values.yaml")
        for index, step in enumerate(release_steps(scenario)[-2:]):  # from 4.2.7 with Vault (all history: +2 s)
            write_values_file(scenario, values_file, extra_overrides=step["extra_overrides"])
            verb = "upgrade" if index else "install"
            run(*env, "helm", verb, "circleci-server", chart_path(step["version"]), "-n", NAMESPACE, "--create-namespace",
                "-f", values_file)
        failed = run(*env, "helm", "upgrade", "circleci-server", chart_path("4.3.9"), "-n", NAMESPACE, "-f", values_file,
                     check=False)
        assert failed.returncode != 0 and "vm_service" in failed.stderr
        run(*env, "helm", "upgrade", "circleci-server", chart_path("4.3.9"), "-n", NAMESPACE, "-f",
            scenario["helm"]["migrated_values_file"], "--wait", "--atomic", "--timeout", "60s")
        releases = yaml.safe_load(run(*env, "helm", "list", "-n", NAMESPACE, "-o", "yaml").stdout)
        assert [(r["chart"], int(r["revision"])) for r in releases] == [("circleci-server-4.3.9", 3)]
        pvcs = run(*env, "kubectl", "-n", NAMESPACE, "get", "pvc", "-o", "name").stdout.split()
        assert "persistentvolumeclaim/data-vault-0" in pvcs
        workloads = run(*env, "kubectl", "-n", NAMESPACE, "get", "deploy,sts", "-o", "name").stdout.split()
        assert "deployment.apps/machine-provisioner" in workloads and "deployment.apps/vm-service" not in workloads
        assert "statefulset.apps/vault" not in workloads
    finally:
        server.stop()
