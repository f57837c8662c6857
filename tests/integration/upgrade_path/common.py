"""What the upgrade.yml tests share: one lab per module, the playbook run, the release history, the journal."""
from __future__ import annotations

import base64
import gzip
import json
import os
import re
import sys

import yaml

from ..conftest import REPO_ROOT

PLAYBOOK = str(REPO_ROOT / "playbooks" / "upgrade.yml")
# The lab's cluster runs Kubernetes 1.27, inside every range up to 4.6; no single version is inside every range of
# 4.2 -> 4.10 (4.2 -> 4.3 needs 1.26-1.28, 4.7 -> 4.8 needs 1.33), so the one-run tests widen the later ranges the
# way an operator does when CircleCI revises them (preflight_kubernetes_overrides). The real ranges are refused by the
# planner's unit test (tests/unit/plugins/module_utils/test_hops.py) and the reliability suite's upgrade entry.
KUBERNETES_OVERRIDES = {"4.7": "1.27-1.33", "4.8": "1.27-1.35", "4.9": "1.27-1.35", "4.10": "1.27-1.35"}
OPT_IN = ("-e", "circleci_upgrade_mongodb=true", "-e", "circleci_upgrade_postgresql=true")
# What the PostgreSQL 12 -> 14 move pins in the values (the image of server-scripts' upgrade-postgres-to-14).
POSTGRESQL_PINS = {"registry": "cciserver.azurecr.io", "repository": "server-postgres", "tag": "14.22.4094-4922444"}
NAMESPACE = "circleci-server"


def lab_fixture(scenario):
    """A module-scoped lab of ``scenario`` (the tests of a module are one chain of runs on it)."""
    import pytest

    @pytest.fixture(scope="module")
    def _lab(run, tmp_path_factory):
        from ..conftest import RunningLab
        state_dir = tmp_path_factory.mktemp("lab-" + scenario)
        python = str(REPO_ROOT / ".venv" / "bin" / "python")
        run(python, "-m", "tests.lab", "up", scenario, "--state-dir", str(state_dir), "--factor", "100")
        extra = state_dir / "extra-vars.yml"
        extra.write_text(yaml.safe_dump({
            "circleci_kubernetes_overrides": KUBERNETES_OVERRIDES,
            "circleci_nomad_terraform_version": "4.10.0",
            "circleci_work_dir": str(state_dir / "work"),
        }))
        with open(state_dir / "lab.json") as handle:
            lab = RunningLab(json.load(handle))
        lab.extra_vars = str(extra)
        lab.state_dir = state_dir
        yield lab
        run(python, "-m", "tests.lab", "down", "--state-dir", str(state_dir), check=False)
    return _lab


def play(run, lab, *extra, check=True, overrides=True):
    args = ["ansible-playbook", "-i", lab.files["inventory"], PLAYBOOK]
    if overrides:
        args += ["-e", "@" + lab.extra_vars]
    else:
        args += ["-e", "circleci_work_dir=%s" % (lab.state_dir / "work")]
    return run(*args, *extra, env=lab.env, check=check)


def history(lab) -> dict:
    """Revision -> chart version of the release (helm's release Secrets; helm keeps the last 10 revisions)."""
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=lab.files["kubeconfig"])
    secrets = client.CoreV1Api(api).list_namespaced_secret(NAMESPACE, label_selector="owner=helm").items
    versions = {}
    for secret in secrets:
        release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
        versions[int(secret.metadata.labels["version"])] = release["chart"]["metadata"]["version"]
    return dict(sorted(versions.items()))


def _apps(lab):
    from kubernetes import client, config
    return client.AppsV1Api(config.new_client_from_config(config_file=lab.files["kubeconfig"]))


def application_replicas(lab) -> dict:
    """Deployment name -> spec.replicas of the application layer (what postgresql_upgrade stops)."""
    return {d.metadata.name: d.spec.replicas
            for d in _apps(lab).list_namespaced_deployment(NAMESPACE, label_selector="layer=application").items}


def postgresql_container(lab):
    """The container spec of statefulset/postgresql (its image and POSTGRESQL_DATA_DIR)."""
    (container,) = _apps(lab).read_namespaced_stateful_set("postgresql", NAMESPACE).spec.template.spec.containers
    return container


def assert_postgresql_14_serves_the_started_application(lab) -> None:
    """After the PostgreSQL move: the 14 image on data-14, and the upgrade that followed started the application."""
    container = postgresql_container(lab)
    assert container.image.endswith(":" + POSTGRESQL_PINS["tag"])
    assert {e.name: e.value for e in container.env}["POSTGRESQL_DATA_DIR"] == "/bitnami/postgresql/data-14"
    assert [name for name, replicas in application_replicas(lab).items() if not replicas] == [], \
        "the 4.10 upgrade started the application again"


def revisions_in_request_order(lab) -> list:
    """The release revisions helm recorded, in the order of the request log (``.../sh.helm.release.v1.<r>.v<N>``)."""
    seen = []
    for entry in lab.admin.requests("kube"):
        match = re.search(r"/secrets/sh\.helm\.release\.v1\.[\w-]+\.v(\d+)", entry["path"])
        if match and int(match.group(1)) not in seen:
            seen.append(int(match.group(1)))
    return seen


def journal(lab) -> list:
    """The data-store stand-ins' journal (FCV changes, dumps, refusals), oldest first."""
    if not os.path.exists(lab.files["datastores"]):
        return []
    with open(lab.files["datastores"]) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def migrate_values(tree, source, target):
    """helm_values_migrate's logic (module_utils), on a plain tree."""
    collections = str(REPO_ROOT / ".cache" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.circleci.server.plugins.module_utils.values import migrations, yamlfile
    return yamlfile.to_plain(migrations.migrate(tree, source, target).tree)
