"""The test harness's bytecode cache for zip imports (hacking/python_startup/zipimport_bytecode_cache.py): the code
a module runs is the code its source compiles to, whatever the cache holds."""
from __future__ import annotations

import importlib
import os
import sys
import traceback
import zipfile
import zipimport

import pytest

from .conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "hacking" / "python_startup"))
import zipimport_bytecode_cache as cache  # noqa: E402  pylint: disable=wrong-import-position

SOURCE = '''
def answer():
    return {value}


class Thing:
    def fail(self):
        raise RuntimeError("from the zip")
'''


@pytest.fixture
def compiles(tmp_path, monkeypatch):
    """The cache installed over zipimport, in tmp_path/cache; counts the real compiles."""
    counted = []
    original = getattr(zipimport._compile_source, "uncached", zipimport._compile_source)  # pylint: disable=protected-access

    def counting(pathname, source):
        counted.append(pathname)
        return original(pathname, source)

    monkeypatch.setattr(zipimport, "_compile_source", cache.cached_compiler(str(tmp_path / "cache"), counting))
    return counted


def import_from_zip(tmp_path, name, value):
    archive = tmp_path / ("%s.zip" % name)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("zipped_%s.py" % name, SOURCE.format(value=value))
    sys.path.insert(0, str(archive))
    try:
        sys.modules.pop("zipped_%s" % name, None)
        return importlib.import_module("zipped_%s" % name)
    finally:
        sys.path.remove(str(archive))


def test_a_second_import_of_the_same_source_compiles_nothing(tmp_path, compiles):
    first = import_from_zip(tmp_path, "one", 42)
    assert first.answer() == 42
    assert compiles, "the first import compiles"
    compiles.clear()
    second = import_from_zip(tmp_path, "two", 42)
    assert second.answer() == 42
    assert compiles == [], "served from the cache"
    # Tracebacks name this zip, down to a method's frame (nested code objects renamed too).
    with pytest.raises(RuntimeError) as raised:
        second.Thing().fail()
    assert traceback.extract_tb(raised.tb)[-1].filename == os.path.join(str(tmp_path / "two.zip"), "zipped_two.py")


def test_a_changed_source_is_compiled_again(tmp_path, compiles):
    import_from_zip(tmp_path, "old", 1)
    compiles.clear()
    changed = import_from_zip(tmp_path, "new", 2)
    assert changed.answer() == 2
    assert compiles, "a new source is a new entry"


def test_an_unreadable_entry_is_compiled_again(tmp_path, compiles):
    import_from_zip(tmp_path, "first", 7)
    for directory, _dirs, files in os.walk(tmp_path / "cache"):
        for name in files:
            with open(os.path.join(directory, name), "wb") as handle:
                handle.write(b"\x00 not marshal data")
    compiles.clear()
    again = import_from_zip(tmp_path, "second", 7)
    assert again.answer() == 7
    assert compiles, "a broken entry is not trusted"


def test_without_the_variable_nothing_is_installed(monkeypatch):
    monkeypatch.delenv(cache.ENVIRONMENT_VARIABLE, raising=False)
    before = zipimport._compile_source  # pylint: disable=protected-access
    assert cache.install() is False
    assert zipimport._compile_source is before  # pylint: disable=protected-access


def test_ansible_module_runs_use_the_cache(run, tmp_path):
    """The harness's environment reaches the module processes: a task fills the cache it is given."""
    cache_dir = tmp_path / "module-cache"
    proc = run("ansible", "localhost", "-m", "ansible.builtin.ping", env={"CIRCLECI_ZIPIMPORT_CACHE": str(cache_dir)})
    assert '"ping": "pong"' in proc.stdout
    entries = [name for _d, _s, names in os.walk(cache_dir) for name in names]
    assert len(entries) > 10, entries
