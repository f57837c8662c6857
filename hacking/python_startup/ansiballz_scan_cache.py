"""A cache for the import scan Ansible runs on the controller to build each module's AnsiballZ payload.

For every module a playbook run uses, ansible-core parses the module and each module_utils file it reaches into an
AST (``_compile_module_ast``) only to list their imports (``ModuleDepFinder``): about 0.2 s of CPU for a
kubernetes.core module. Ansible keeps the built payload for one run only (in its per-run local temp directory), so a
test stage of a few hundred playbook runs scans the same unchanged files thousands of times: a tenth of a playbook
run's CPU here.

With ``CIRCLECI_ANSIBALLZ_SCAN_CACHE`` naming a directory, the scan of a file is served from there. The scan's
result is a pure function of the file's text, its dotted name and whether it is a package ``__init__``: an entry's
name is the SHA-256 of those three, so a changed file is a new entry. Ansible still locates, reads and zips every
file itself: only the parsing and the walk of the tree are skipped. A file is parsed only when its entry is missing
or unreadable (entries are written to a temp file and renamed); a syntax error is reported as ansible reports it.
Without the variable, or on an ansible-core without ``recursive_finder``, ``_compile_module_ast`` and
``ModuleDepFinder``, nothing changes. hacking/env.sh turns it on
for the checkout's commands (through sitecustomize.py beside this file); it is never part of the collection.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import os
import sys
import types

ENVIRONMENT_VARIABLE = "CIRCLECI_ANSIBALLZ_SCAN_CACHE"
TARGET = "ansible.executor.module_common"


class UnparsedSource:
    """What ``_compile_module_ast`` returns instead of the tree: the source, parsed on first use."""

    __slots__ = ("name", "source", "_parse", "_tree")

    def __init__(self, name, source, parse):
        self.name, self.source, self._parse, self._tree = name, source, parse, None

    def tree(self):
        if self._tree is None:
            self._tree = self._parse(self.name, self.source)
        return self._tree

    def __getattr__(self, name):
        # Anything else reads the tree (e.g. ``body``, where _get_module_metadata looks when module metadata is on).
        return getattr(self.tree(), name)


class ScanResult:
    """The two attributes of a ModuleDepFinder that ``recursive_finder`` reads."""

    __slots__ = ("submodules", "optional_imports")

    def __init__(self, submodules, optional_imports):
        self.submodules, self.optional_imports = submodules, optional_imports


def entry_path(cache_dir: str, module_fqn, is_pkg_init, source) -> str:
    text = source if isinstance(source, bytes) else str(source).encode("utf-8", "surrogateescape")
    head = json.dumps([str(module_fqn), bool(is_pkg_init)]).encode()
    digest = hashlib.sha256(head + b"\0" + bytes(text)).hexdigest()
    return os.path.join(cache_dir, digest[:2], digest + ".json")


def _load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return ScanResult({tuple(name) for name in data["submodules"]}, {tuple(name) for name in data["optional"]})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path, found) -> None:
    data = {"submodules": sorted(found.submodules), "optional": sorted(found.optional_imports)}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = "%s.%d.tmp" % (path, os.getpid())
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(temp, path)
    except OSError:
        pass


def patch(module_common, cache_dir: str) -> bool:
    """Serves the import scan of ``module_common`` (ansible.executor.module_common) from ``cache_dir``.

    Only ``recursive_finder`` sees the cached scan: it gets its own copy of the module's globals in which the parse
    is deferred (until something reads the tree) and ModuleDepFinder consults the cache; the class itself and every
    other caller stay as they are."""
    finder_function = getattr(module_common, "recursive_finder", None)
    parse = getattr(module_common, "_compile_module_ast", None)
    finder = getattr(module_common, "ModuleDepFinder", None)
    if None in (finder_function, parse, finder) or getattr(finder_function, "scan_cache", False):
        return False

    def compile_later(module_name, source_code):
        return UnparsedSource(module_name, source_code, parse)

    def scan(module_fqn, tree, is_pkg_init=False):
        path = entry_path(cache_dir, module_fqn, is_pkg_init, tree.source)
        found = _load(path)
        if found is None:
            found = finder(module_fqn, tree.tree(), is_pkg_init)
            _store(path, found)
        return found

    namespace = dict(finder_function.__globals__)
    namespace.update(_compile_module_ast=compile_later, ModuleDepFinder=scan)
    patched = types.FunctionType(finder_function.__code__, namespace, finder_function.__name__,
                                 finder_function.__defaults__, finder_function.__closure__)
    patched.__kwdefaults__ = finder_function.__kwdefaults__
    patched.__doc__ = finder_function.__doc__
    patched.scan_cache = True
    patched.uncached = finder_function
    module_common.recursive_finder = patched
    return True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches module_common right after Python executes it (sitecustomize runs before ansible is imported)."""

    def __init__(self, cache_dir: str):
        self.cache_dir = cache_dir

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, cache_dir = spec.loader.exec_module, self.cache_dir

        def exec_then_patch(module):
            exec_module(module)
            patch(module, cache_dir)

        spec.loader.exec_module = exec_then_patch
        return spec


def install(cache_dir: str | None = None) -> bool:
    """Patches ansible's module_common when it is imported (now, if it already is); False when the variable is
    unset."""
    cache_dir = cache_dir or os.environ.get(ENVIRONMENT_VARIABLE)
    if not cache_dir:
        return False
    if TARGET in sys.modules:
        return patch(sys.modules[TARGET], cache_dir)
    sys.meta_path.insert(0, _PatchOnImport(cache_dir))
    return True
