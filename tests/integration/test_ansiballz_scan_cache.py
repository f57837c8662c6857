"""The test harness's cache of the controller's import scan (hacking/python_startup/ansiballz_scan_cache.py): a
module's payload is the same file for file with the cache cold, warm or off, and a changed file is scanned again."""
from __future__ import annotations

import json
import os
import sys

import pytest

from .conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "hacking" / "python_startup"))
import ansiballz_scan_cache as cache  # noqa: E402  pylint: disable=wrong-import-position

MODULES = ("kubernetes.core.k8s_info", "amazon.aws.ec2_instance_info", "circleci.server.pod_exec",
           "circleci.server.helm_values_migrate", "ansible.builtin.ping")

# Builds each module's payload zip as ansible's _find_module_utils does; prints {module: {member: sha256}} and how
# many files were parsed.
BUILD = r'''
import datetime, hashlib, io, json, sys, zipfile
from ansible.plugins.loader import init_plugin_loader, module_loader
init_plugin_loader()
from ansible.executor import module_common
from ansible.executor.module_common import _builder
import ansiballz_scan_cache
parsed = []
tree = ansiballz_scan_cache.UnparsedSource.tree
ansiballz_scan_cache.UnparsedSource.tree = lambda self: parsed.append(self.name) or tree(self)
payloads = {}
for name in sys.argv[1:]:
    path = module_loader.find_plugin_with_context(name).plugin_resolved_path
    with open(path, "rb") as handle:
        data = handle.read()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        module_common.recursive_finder(name.split(".")[-1], module_common._get_ansible_module_fqn(path), data, zf,
                                       datetime.datetime.now(datetime.timezone.utc),
                                       _builder.ExtensionManager.create(task_vars={}))
    with zipfile.ZipFile(buffer) as zf:
        payloads[name] = {member: hashlib.sha256(zf.read(member)).hexdigest() for member in zf.namelist()}
print(json.dumps({"payloads": payloads, "parsed": len(parsed),
                  "cached": getattr(module_common.recursive_finder, "scan_cache", False)}))
'''


@pytest.fixture
def build(run, tmp_path):
    def _build(cache_dir):
        env = {"CIRCLECI_ANSIBALLZ_SCAN_CACHE": str(cache_dir) if cache_dir else ""}
        proc = run(str(REPO_ROOT / ".venv" / "bin" / "python"), "-c", BUILD, *MODULES, env=env, cwd=tmp_path)
        return json.loads(proc.stdout)
    return _build


def test_payloads_are_the_same_with_the_cache_cold_warm_or_off(build, tmp_path):
    off = build(None)
    assert off["cached"] is False
    cold = build(tmp_path / "scan")
    warm = build(tmp_path / "scan")
    assert cold["cached"] and warm["cached"]
    assert cold["parsed"] > 50, "a cold cache parses every file"
    assert warm["parsed"] == 0, "a warm cache parses nothing"
    for name in MODULES:
        assert len(off["payloads"][name]) > 3, name
        assert cold["payloads"][name] == off["payloads"][name], name
        assert warm["payloads"][name] == off["payloads"][name], name


class FakeFinder:
    """ModuleDepFinder's contract: the imports it found, from a tree."""

    def __init__(self, module_fqn, tree, is_pkg_init=False):
        self.submodules = {("ansible", "module_utils", tree["imports"])}
        self.optional_imports = set()


def fake_module_common(calls):
    """A module_common with recursive_finder's use of the three names it patches."""
    import types  # pylint: disable=import-outside-toplevel
    module = types.ModuleType("fake_module_common")
    code = (
        "def _compile_module_ast(name, source):\n"
        "    calls.append(name)\n"
        "    return {'imports': source.decode().split('=')[1].strip()}\n"
        "def _get_module_metadata(tree):\n"
        "    return 'metadata'\n"
        "def recursive_finder(name, fqn, data):\n"
        "    tree = _compile_module_ast(name, data)\n"
        "    return _get_module_metadata(tree), ModuleDepFinder(fqn, tree).submodules\n")
    module.__dict__.update(calls=calls, ModuleDepFinder=FakeFinder)
    exec(code, module.__dict__)  # pylint: disable=exec-used
    return module


def test_a_changed_source_is_scanned_again_and_an_unreadable_entry_too(tmp_path):
    calls = []
    module = fake_module_common(calls)
    assert cache.patch(module, str(tmp_path / "scan"))
    assert cache.patch(module, str(tmp_path / "scan")) is False, "patched once"
    assert module.recursive_finder("m", "ns.m", b"imports = basic") == ("metadata", {("ansible", "module_utils", "basic")})
    assert module.recursive_finder("m", "ns.m", b"imports = basic")[1] == {("ansible", "module_utils", "basic")}
    assert calls == ["m"], "the second scan of the same source is served from the cache"
    assert module.recursive_finder("m", "ns.m", b"imports = urls")[1] == {("ansible", "module_utils", "urls")}
    assert calls == ["m", "m"], "a changed source is a new entry"
    for directory, _dirs, files in os.walk(tmp_path / "scan"):
        for name in files:
            with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
                handle.write("{not json")
    assert module.recursive_finder("m", "ns.m", b"imports = urls")[1] == {("ansible", "module_utils", "urls")}
    assert calls == ["m", "m", "m"], "a broken entry is not trusted"
    # Another dotted name or package-ness is another entry: relative imports resolve from them.
    module.recursive_finder("m", "other.m", b"imports = urls")
    assert len(calls) == 4
    # The class and other callers are untouched.
    assert module.ModuleDepFinder is FakeFinder


def test_without_the_variable_nothing_is_installed(monkeypatch):
    monkeypatch.delenv(cache.ENVIRONMENT_VARIABLE, raising=False)
    before = list(sys.meta_path)
    assert cache.install() is False
    assert sys.meta_path == before
