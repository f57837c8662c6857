"""The stand-in charts of the whole 4.x upgrade path: one per minor's last patch, 4.2 to the newest of the
release catalog, each refusing the values of the minor before it where a values hop changes them, and each
accepting the values helm_values_migrate produces for it."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import yaml

from tests.lab.charts import LAST_PATCHES, NEWEST, VERSIONS, chart_path, parse_version
from tests.lab.charts.schema import MINORS, documented_top_level
from tests.lab.scenarios import load_scenario, render_values

REPO_ROOT = Path(__file__).resolve().parents[3]
NAMESPACE = "circleci-server"


def _collection_module(dotted: str):
    """A module_utils module of this checkout, imported as the collection (plain Python, no Ansible)."""
    collections = str(REPO_ROOT / ".cache" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    return importlib.import_module("ansible_collections.circleci.server.plugins.module_utils." + dotted)


def _minor(version: str) -> str:
    return parse_version(version)[1]


def template(run, version, *args, check=True):
    return run("helm", "template", "circleci-server", chart_path(version), "-n", NAMESPACE, *args, check=check)


@pytest.fixture(scope="module")
def migrated_values(tmp_path_factory):
    """aws-4.2's values file migrated by helm_values_migrate's logic to every minor of the path (a file each)."""
    migrations = _collection_module("values.migrations")
    yamlfile = _collection_module("values.yamlfile")
    tree = yaml.safe_load(render_values(load_scenario("aws-4.2")))
    folder = tmp_path_factory.mktemp("path-values")
    files = {}
    for version in LAST_PATCHES:
        migrated = yamlfile.to_plain(migrations.migrate(tree, "4.2.7", version).tree) if version != "4.2.7" else tree
        path = folder / ("values-%s.yaml" % version)
        path.write_text(yaml.safe_dump(migrated, sort_keys=False))
        files[version] = str(path)
    return files


def test_last_patches_follow_the_release_catalog():
    """A release added to versions.py needs its stand-in chart (values overlay, schema row) in the same change."""
    versions = _collection_module("versions")
    catalog = [str(r.last_patch) for r in versions.Catalog().minors if (r.last_patch.major, r.last_patch.minor) >= (4, 2)]
    assert list(LAST_PATCHES) == catalog
    assert NEWEST == catalog[-1]
    assert [_minor(v) for v in LAST_PATCHES] == list(MINORS)
    assert set(LAST_PATCHES) < set(VERSIONS)


def test_documented_top_level_keys_move_as_the_tables_do():
    assert "vm_service" in documented_top_level("4.2") and "vm_service" not in documented_top_level("4.3")
    assert "ciam_service" in documented_top_level("4.5") and "ciam_service" not in documented_top_level("4.4")
    assert "public_api_service" in documented_top_level("4.8")
    assert {"checkout", "notifications"} <= set(documented_top_level("4.10"))
    assert not {"telegraf", "audit_log_service"} & set(documented_top_level("4.10"))


@pytest.mark.parametrize("version", LAST_PATCHES)
def test_each_chart_accepts_the_values_migrated_to_it(run, migrated_values, version):
    rendered = [doc for doc in yaml.safe_load_all(template(run, version, "-f", migrated_values[version]).stdout) if doc]
    chart = {doc["metadata"]["labels"].get("helm.sh/chart") for doc in rendered if doc["metadata"].get("labels")}
    assert chart == {"circleci-server-%s" % version}
    provisioner = "vm-service" if version == "4.2.7" else "machine-provisioner"
    assert ("Deployment", provisioner) in {(d["kind"], d["metadata"]["name"]) for d in rendered}


@pytest.mark.parametrize("version,setting,message", [
    ("4.3.9", None, "Additional property vm_service is not allowed"),
    ("4.7.15", None, "global.imagePullSecrets"),
    ("4.7.15", 'machine_provisioner.machine_agent_base_url="https://example.invalid/mp"', "machine_provisioner"),
    ("4.8.12", 'machine_provisioner.config_path="/etc/mp.yaml"', "machine_provisioner"),
    ("4.8.12", 'telegraf={"config":{"custom_config_file":"x"}}', "telegraf.config"),
    ("4.9.5", 'global.tracing={"enabled":false}', "global"),
])
def test_each_values_hop_is_needed(run, migrated_values, version, setting, message):
    """The values of the minor before (plus the old key where the hop renames one) fail `helm template`."""
    previous = migrated_values[LAST_PATCHES[LAST_PATCHES.index(version) - 1]]
    args = ["-f", previous] + (["--set-json", setting] if setting else [])
    proc = template(run, version, *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    if setting:  # the same key is accepted by the minor before the rename
        template(run, LAST_PATCHES[LAST_PATCHES.index(version) - 1], *args)


def test_data_images_follow_each_minors_defaults_and_the_values(run, migrated_values):
    def images(version, *args):
        rendered = {(d["kind"], d["metadata"]["name"]): d
                    for d in yaml.safe_load_all(template(run, version, "-f", migrated_values[version], *args).stdout) if d}
        return {name: rendered["StatefulSet", name]["spec"]["template"]["spec"]["containers"][0]
                for name in ("mongodb", "postgresql")}

    assert images("4.2.7")["mongodb"]["image"].endswith("/mongodb:3.6.22-debian-9-r38")
    assert images("4.2.7")["postgresql"]["image"].endswith(":12.6.0")
    assert images("4.8.12")["mongodb"]["image"].endswith("/mongodb:3.6.22-debian-9-r38")
    assert images("4.8.12")["postgresql"]["image"].endswith(":12.16.37-7629bfd")
    assert images("4.9.5")["mongodb"]["image"] == "cciserver.azurecr.io/server-mongodb:4.4.15-debian-10-r8"
    newest = images(NEWEST)["mongodb"]
    assert newest["image"] == "cciserver.azurecr.io/server-mongodb:7.0.15-debian-12-r2"
    assert newest["livenessProbe"]["exec"]["command"][0] == "mongosh" and "readinessProbe" in newest
    pinned = images("4.8.12", "--set", "mongodb.image.tag=4.4.15-debian-10-r8,mongodb.image.registry=registry.example,"
                    "mongodb.image.repository=server-mongodb")["mongodb"]
    assert pinned["image"] == "registry.example/server-mongodb:4.4.15-debian-10-r8" and "livenessProbe" not in pinned
