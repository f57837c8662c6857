"""A bytecode cache for modules Python imports from zip files: the test harness's ccache for Ansible modules.

Every task Ansible runs is a fresh Python process that imports its module_utils (ansible's and the collections')
from the AnsiballZ zip. zipimport keeps no bytecode: it compiles each file from source, twice (``find_spec`` calls
``get_filename``, which compiles; ``exec_module`` compiles again). On this project's 2-core machines that is about
a third of the CPU of a module run and a fifth of a whole playbook's.

With ``CIRCLECI_ZIPIMPORT_CACHE`` naming a directory, zipimport's compile step is served from there: an entry's
name is the SHA-256 of the interpreter's cache tag, its -O level and the source bytes, so a changed file is a new
entry and the code run is exactly the code the source compiles to (only the file name in tracebacks is set to this
run's zip). Entries are written to a temp file and renamed, so concurrent processes never read half an entry; an
unreadable entry is compiled again. Without the variable nothing changes. hacking/env.sh turns it on for the
checkout's commands (through sitecustomize.py beside this file); it is never part of the collection.
"""
from __future__ import annotations

import hashlib
import marshal
import os
import sys
import zipimport

ENVIRONMENT_VARIABLE = "CIRCLECI_ZIPIMPORT_CACHE"
_CODE_TYPE = type(compile("", "<empty>", "exec"))


def _named(code, filename: str):
    """``code`` with ``co_filename`` set to ``filename``, nested code objects (functions, classes) included."""
    consts = tuple(_named(const, filename) if isinstance(const, _CODE_TYPE) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def entry_path(cache_dir: str, source: bytes) -> str:
    # compile() follows the interpreter's -O level: a process run with -O gets its own entries.
    tag = "%s-O%d" % (sys.implementation.cache_tag, sys.flags.optimize)
    digest = hashlib.sha256(tag.encode() + b"\0" + source).hexdigest()
    return os.path.join(cache_dir, digest[:2], digest)


def cached_compiler(cache_dir: str, compile_source):
    """A drop-in for zipimport's ``_compile_source(pathname, source)`` that keeps what ``compile_source`` returns
    in ``cache_dir``."""

    def compile_cached(pathname, source):
        path = entry_path(cache_dir, source)
        try:
            with open(path, "rb") as handle:
                code = marshal.load(handle)
        except (OSError, EOFError, ValueError, TypeError):
            code = None
        if isinstance(code, _CODE_TYPE):
            return code if code.co_filename == pathname else _named(code, pathname)
        code = compile_source(pathname, source)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temp = "%s.%d.tmp" % (path, os.getpid())
            with open(temp, "wb") as handle:
                marshal.dump(code, handle)
            os.replace(temp, path)
        except OSError:
            pass
        return code

    compile_cached.uncached = compile_source
    return compile_cached


def install(cache_dir: str | None = None) -> bool:
    """Serves zipimport's compile step from ``cache_dir`` (default: $CIRCLECI_ZIPIMPORT_CACHE); False when unset or
    when this Python's zipimport has no such step."""
    cache_dir = cache_dir or os.environ.get(ENVIRONMENT_VARIABLE)
    current = getattr(zipimport, "_compile_source", None)
    if not cache_dir or current is None:
        return False
    zipimport._compile_source = cached_compiler(cache_dir, getattr(current, "uncached", current))  # pylint: disable=protected-access
    return True
