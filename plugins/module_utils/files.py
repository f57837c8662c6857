# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe input and output files for every module: refuse what would hang, crash or leak, with a message.

Reading (``read_text``, ``read_bytes``): the path must be a regular file (a FIFO would block the open, a
device or a directory would hang or fail the read), checked with ``os.stat`` before opening and again on the
descriptor, which is opened with ``O_NONBLOCK`` so that a FIFO swapped in between cannot block; at most
``max_bytes`` are read (the message names the limit); text must be UTF-8 (a binary file is named as such).

Writing (``check_dest``): before anything changes, a destination must not be a directory, a dangling
symbolic link or a special file, and its directory must exist and be writable; returns the real path.

YAML (``load_yaml`` for PyYAML, ``check_expansion`` for a tree any loader built, ``yaml_error_message``):
documents are bounded in expanded size (a billion-laughs bomb of nested aliases is refused before anything
walks it), duplicate keys are refused, and no message quotes a value: only keys, lines and columns.

Every failure raises ``InputError`` (a ``ValueError``) whose message says what is wrong, where, and what to
do. Plain Python with no Ansible import; PyYAML is imported lazily.
"""

from __future__ import annotations

import errno
import os
import re
import stat

# A CircleCI Server values file, kubeconfig or log is a few KiB to a few hundred KiB; ruamel.yaml's
# round-trip parser needs about 10 s per MiB on a busy 2-core machine.
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
# Nodes of a YAML document once every alias is expanded (a 2 MiB values file has about 100 000).
DEFAULT_MAX_NODES = 250000
# Flow collections ([...] and {...}) nested in one another: a values file nests a few levels; YAML parsers
# recurse per level (thousands of levels take ruamel.yaml minutes before a RecursionError).
DEFAULT_MAX_DEPTH = 100


class InputError(ValueError):
    """An input or output file the module refuses; the message says what is wrong, where and what to do."""


def _human(size) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return "%.1f %s" % (size / factor, unit) if size % factor else "%d %s" % (size // factor, unit)
    return "%d bytes" % size


def _file_kind(mode) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _stat_source(path, what):
    try:
        return os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError("%s %s is a symbolic link to %s, which does not exist: point it at the file, or give "
                             "the file's path." % (what, path, os.readlink(path)))
        raise InputError("%s %s does not exist: give the path of the file on the host that runs the module."
                         % (what, path))
    except OSError as exc:
        raise InputError("Cannot read %s %s: %s. Check the path and its permissions." % (what, path, exc.strerror))


def read_bytes(path, what="the file", max_bytes=DEFAULT_MAX_BYTES) -> bytes:
    """The content of the regular file ``path``, at most ``max_bytes``; ``what`` names it in messages ('src')."""
    path = os.fspath(path)
    info = _stat_source(path, what)
    if not stat.S_ISREG(info.st_mode):
        raise InputError("%s %s is %s, not a regular file%s: give the path of a file." % (
            what, path, _file_kind(info.st_mode),
            "" if stat.S_ISDIR(info.st_mode) else " (reading it could block forever)"))
    if info.st_size > max_bytes:
        raise InputError("%s %s is %s, over the %s this module reads: check that it is the right file (a "
                         "values file or kubeconfig is a few KiB), or trim it." % (
                             what, path, _human(info.st_size), _human(max_bytes)))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError("Cannot read %s %s: %s. Check the path and its permissions." % (what, path, exc.strerror))
    try:
        # The path may have been swapped for a FIFO or a device since the stat: judge what was opened.
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("%s %s is %s, not a regular file: give the path of a file." % (
                what, path, _file_kind(os.fstat(fd).st_mode)))
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise InputError("%s %s grew past the %s this module reads while it was read: check that it is "
                                 "the right file." % (what, path, _human(max_bytes)))
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise InputError("Cannot read %s %s: %s. Check the path and its permissions." % (what, path, exc.strerror))
    finally:
        os.close(fd)


def read_text(path, what="the file", max_bytes=DEFAULT_MAX_BYTES) -> str:
    """``read_bytes`` decoded as UTF-8; a binary file (a NUL byte, or not UTF-8) is refused by name."""
    data = read_bytes(path, what, max_bytes)
    if b"\x00" in data:
        raise InputError("%s %s is a binary file (a NUL byte at offset %d), not text: give the path of the text "
                         "file." % (what, path, data.index(b"\x00")))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("%s %s is not UTF-8 text (an invalid byte at offset %d): give the path of the text file, "
                         "or convert it to UTF-8." % (what, path, exc.start))


def check_dest(path, what="dest") -> str:
    """The real path a module may write ``path`` through, or ``InputError`` before anything changes.

    Refused: a directory, a dangling symbolic link, a FIFO or device, a missing parent directory, a parent
    that is not a directory or not writable. A symbolic link to a file is followed (the file is written).
    """
    path = os.fspath(path)
    if not path:
        raise InputError("%s is empty: give the path of the file to write." % what)
    if os.path.islink(path) and not os.path.exists(path):
        raise InputError("%s %s is a symbolic link to %s, which does not exist: remove the link or point it at a "
                         "file in an existing directory." % (what, path, os.readlink(path)))
    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise InputError("%s %s is a directory: give the path of a file, for example %s." % (
            what, path, os.path.join(path, "values.yaml")))
    if os.path.exists(real) and not stat.S_ISREG(os.stat(real).st_mode):
        raise InputError("%s %s is %s, not a regular file: give the path of a file." % (
            what, path, _file_kind(os.stat(real).st_mode)))
    directory = os.path.dirname(real) or "."
    if not os.path.exists(directory):
        raise InputError("The directory of %s %s, %s, does not exist: create it first, or give a path in an "
                         "existing directory." % (what, path, directory))
    if not os.path.isdir(directory):
        raise InputError("The parent of %s %s, %s, is not a directory: give a path in a directory." % (
            what, path, directory))
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError("The directory of %s %s, %s, is not writable by this user (uid %d): make it writable, "
                         "run as its owner (become), or give a path in a writable directory." % (
                             what, path, directory, os.geteuid()))
    return real


def os_error_message(exc, action, path) -> str:
    """A sentence for an OSError while ``action`` ('writing') ``path``, saying what to check."""
    advice = {
        errno.ENOSPC: "free some space on its file system",
        errno.EROFS: "the file system is read-only: give a path on a writable one",
        errno.EACCES: "make the file and its directory writable by this user, or run as their owner",
        errno.EPERM: "make the file and its directory writable by this user, or run as their owner",
        errno.ENOENT: "check that its directory exists",
    }.get(exc.errno, "check the path and its permissions")
    return "Error %s %s: %s; %s." % (action, path, exc.strerror or exc, advice)


# --- YAML ---------------------------------------------------------------------------------------------------------

def check_expansion(tree, name, max_nodes=DEFAULT_MAX_NODES):
    """Refuse a loaded YAML tree whose aliases expand past ``max_nodes`` nodes, or that refers to itself.

    A loader shares the object an alias names, so a billion-laughs bomb loads in a moment and only explodes
    when something walks it (a copy, a dump, a JSON result). This walks it with a memo per object: linear
    in the size of the file, whatever the expansion.
    """
    sizes = {}
    stack = [(tree, False)]
    active = set()
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        ident = id(node)
        if done:
            active.discard(ident)
            children = list(node.values()) if isinstance(node, dict) else list(node)
            size = 1 + sum(sizes.get(id(child), 1) for child in children)
            sizes[ident] = size
            if size > max_nodes:
                raise InputError(
                    "%s expands to more than %d YAML nodes once its aliases (*name) are resolved: it looks like an "
                    "alias bomb (\"billion laughs\"). Write the values out without nested aliases." % (name, max_nodes))
            continue
        if ident in sizes:
            continue
        if ident in active:
            raise InputError("%s contains an alias that refers to itself (a recursive structure): a values file "
                             "cannot be recursive; write the values out." % name)
        active.add(ident)
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, False) for child in children)
    return tree


def _mark(exc) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return ""
    return " at line %d, column %d" % (mark.line + 1, mark.column + 1)


_QUOTED_VALUE = re.compile(r"\s*with value .*$|\s*\(original value: .*\)$")


def yaml_error_message(exc, name) -> str:
    """What a PyYAML or ruamel.yaml error says, where, and what to do, never quoting a value of the file."""
    problem = getattr(exc, "problem", None) or ""
    if "duplicate key" in problem:
        key = re.search(r'duplicate key "?(.*?)"?(?: with value|$| \()', problem)
        first = getattr(exc, "context_mark", None)
        return ("%s has the key %s twice in one mapping%s%s: a mapping cannot hold a key twice; delete the one you do "
                "not mean, then run again." % (
                    name, ("'%s'" % key.group(1)) if key else "", _mark(exc),
                    (" (first at line %d)" % (first.line + 1)) if first is not None else ""))
    problem = _QUOTED_VALUE.sub("", problem.splitlines()[0] if problem else "")
    if not problem:
        problem = type(exc).__name__
    return "%s is not valid YAML%s: %s. Fix the file (or restore it from its backup) and run again." % (
        name, _mark(exc), problem)


_FLOW_TOKENS = re.compile(r"[\[\]{}'\"#\n]")


def check_flow_depth(text, name, max_depth=DEFAULT_MAX_DEPTH):
    """Refuse ``text`` whose flow collections nest deeper than ``max_depth``, before a parser recurses into it.

    A quick scan (quotes and comments roughly skipped); it only ever over-counts brackets inside a plain
    scalar, which no values file nests a hundred deep.
    """
    depth = 0
    quote = None
    for match in _FLOW_TOKENS.finditer(text):
        token = match.group()
        if quote:
            if token == quote or token == "\n" and quote == "#":
                quote = None
            continue
        if token in "'\"":
            quote = token
        elif token == "#" and (match.start() == 0 or text[match.start() - 1] in " \t\n"):
            quote = "#"
        elif token in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, match.start()) + 1
                raise InputError("%s nests [ ] and { } more than %d deep (line %d): it is not a values file or "
                                 "kubeconfig; give the right file, or write the values out." % (name, max_depth, line))
        elif token in "]}":
            depth = max(0, depth - 1)
    return text


def _pyyaml_loader():
    import yaml  # pylint: disable=import-outside-toplevel

    class StrictSafeLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        """SafeLoader that refuses duplicate keys (PyYAML keeps the last one silently)."""

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _value_node in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hashable = key in seen
                except TypeError:
                    continue  # the base class raises its own error for an unhashable key
                if hashable:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", seen[key], 'found duplicate key "%s"' % key,
                        key_node.start_mark)
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    return yaml, StrictSafeLoader


def load_yaml(text, name, all_documents=False, max_nodes=DEFAULT_MAX_NODES):
    """PyYAML safe load of ``text`` (one document, or a list with ``all_documents``), bounded and strict.

    Raises ``InputError``: not YAML (line and column, no value quoted), a duplicate key, an alias bomb, nesting
    too deep to parse.
    """
    yaml, loader = _pyyaml_loader()
    check_flow_depth(text, name)
    try:
        if all_documents:
            result = list(yaml.load_all(text, Loader=loader))  # nosec B506 - a SafeLoader subclass
        else:
            result = yaml.load(text, Loader=loader)  # nosec B506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InputError(yaml_error_message(exc, name))
    except RecursionError:
        raise InputError("%s is nested too deeply to parse: it is not a values file or kubeconfig." % name)
    return check_expansion(result, name, max_nodes)
