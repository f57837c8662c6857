"""The collection as a user receives it: documentation renders, the built tarball holds no test tree."""
from __future__ import annotations

import json
import tarfile

import pytest

from .conftest import REPO_ROOT


def test_ansible_doc_renders_server_version_info(run):
    proc = run("ansible-doc", "circleci.server.server_version_info")
    assert "kubernetes_version" in proc.stdout
    assert "EXAMPLES" in proc.stdout


def test_every_module_has_documentation(run):
    modules = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    proc = run("ansible-doc", "--json", *("circleci.server.%s" % m for m in modules))
    docs = json.loads(proc.stdout)
    assert sorted(name.rsplit(".", 1)[1] for name in docs) == modules
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        assert doc["examples"], name
        assert doc["return"], name


def test_galaxy_build_ships_no_tests_molecule_or_venv(run, tmp_path):
    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(REPO_ROOT))
    (tarball,) = tmp_path.glob("circleci-server-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/server_version_info.py" in names
    leaked = [n for n in names if n.split("/")[0] in {"tests", "molecule", ".venv", ".cache", "hacking", ".ci"}]
    assert leaked == []


@pytest.mark.parametrize("kubernetes, supported", [("1.28.4", True), ("1.30.0", False)])
def test_module_runs_through_ansible(run, kubernetes, supported):
    proc = run("ansible", "localhost", "-m", "circleci.server.server_version_info",
               "-a", "server_version=4.3.9 kubernetes_version=%s" % kubernetes, "-o")
    assert ('"kubernetes_supported": %s' % str(supported).lower()) in proc.stdout
