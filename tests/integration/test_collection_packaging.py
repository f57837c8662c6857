"""The collection as a user receives it: documentation renders, the built tarball holds no test tree."""
from __future__ import annotations

import json
import shutil
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


TEST_STATE = (".hypothesis", ".cache", ".pytest_cache", ".ansible", "tests/output", "tests/unit/.hypothesis",
              "plugins/module_utils/__pycache__")


def test_galaxy_build_from_a_tree_where_tests_ran_ships_no_test_state(run, tmp_path):
    """Built from a copy of the checkout in which every kind of test state exists (what `make test` leaves),
    the tarball holds the collection and none of the tests, tools or their state."""
    tree = tmp_path / "tree"
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout.split("\0")
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    for state in TEST_STATE:
        (tree / state / "examples").mkdir(parents=True, exist_ok=True)
        (tree / state / "examples" / "state-from-a-test-run").write_text("left by a test run\n")
    (tree / "plugins" / "module_utils" / "__pycache__" / "versions.cpython-311.pyc").write_bytes(b"\0")
    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(tree))
    (tarball,) = tmp_path.glob("circleci-server-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/server_version_info.py" in names and "roles" in {n.split("/")[0] for n in names}
    shipped_state = [n for n in names if "state-from-a-test-run" in n or "__pycache__" in n or n.endswith(".pyc")]
    assert shipped_state == []
    not_shipped = {"tests", "molecule", ".venv", ".cache", ".hypothesis", "hacking", ".ci", ".pytest_cache", ".ansible",
                   ".config", "requirements"}
    leaked = [n for n in names if n.split("/")[0] in not_shipped]
    assert leaked == []


@pytest.mark.parametrize("kubernetes, supported", [("1.28.4", True), ("1.30.0", False)])
def test_module_runs_through_ansible(run, kubernetes, supported):
    proc = run("ansible", "localhost", "-m", "circleci.server.server_version_info",
               "-a", "server_version=4.3.9 kubernetes_version=%s" % kubernetes, "-o")
    assert ('"kubernetes_supported": %s' % str(supported).lower()) in proc.stdout
