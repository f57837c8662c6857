# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Round-trip YAML for values files: comments, key order, quoting and indentation kept.

``load`` reads a values file into ruamel round-trip containers and remembers its layout (indents,
document start); ``dump`` writes a tree back with that layout, so a file that was not changed
dumps to the same bytes and a changed one differs only in the changed lines.

Plain Python with no Ansible import. ruamel.yaml is imported lazily-guarded: callers check
``HAS_RUAMEL`` (a module reports ``missing_required_lib('ruamel.yaml')``).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from ansible_collections.circleci.server.plugins.module_utils.files import (
    DEFAULT_MAX_NODES,
    InputError,
    check_expansion,
    check_flow_depth,
    yaml_error_message,
)

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.representer import RoundTripRepresenter
except ImportError as _exc:  # pragma: no cover - exercised only without ruamel
    HAS_RUAMEL = False
    RUAMEL_IMPORT_ERROR = _exc
    CommentedMap = dict
    CommentedSeq = list
else:
    HAS_RUAMEL = True
    RUAMEL_IMPORT_ERROR = None


class ValuesFileError(ValueError):
    """A values file that cannot be migrated: not YAML, a duplicate key, an alias bomb, not one mapping."""


@dataclass(frozen=True)
class Layout:
    """How a values file is indented, so that it is written back the same way."""
    mapping: int = 2
    offset: int = 2
    explicit_start: bool = False
    null: str = ""
    newline: str = "\n"
    final_newline: bool = True

    @property
    def sequence(self) -> int:
        return self.offset + 2


_KEY_LINE = re.compile(r"^( *)([^\s#-][^#]*?|-\s+[^#]*?):\s*(#.*)?$")
_ITEM_LINE = re.compile(r"^( *)- ")


def _significant_lines(text):
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        yield line


def guess_layout(text: str) -> Layout:
    """The mapping indent and the sequence dash offset that the file uses (2 and 2 when it shows none)."""
    mapping = offset = None
    previous = None
    for line in _significant_lines(text):
        indent = len(line) - len(line.lstrip(" "))
        if previous is not None:
            prev_indent, prev_is_key, prev_is_item = previous
            if prev_is_key and not prev_is_item:
                item = _ITEM_LINE.match(line)
                if item and offset is None:
                    offset = indent - prev_indent
                elif not item and indent > prev_indent and mapping is None:
                    mapping = indent - prev_indent
        key = _KEY_LINE.match(line)
        previous = (indent, bool(key), bool(_ITEM_LINE.match(line)))
        if mapping is not None and offset is not None:
            break
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    nulls = {style: len(re.findall(r"(?m)(?::|^ *-)[ \t]+%s[ \t]*(?:#.*)?$" % re.escape(style), text))
             for style in ("null", "~", "Null", "NULL")}
    null = max(nulls, key=nulls.get) if any(nulls.values()) else ""
    return Layout(mapping=mapping or 2, offset=2 if offset is None else offset,
                  explicit_start=first.rstrip() == "---", null=null,
                  newline="\r\n" if "\r\n" in text else "\n",
                  final_newline=not text.strip() or text.endswith("\n"))


def _yaml(layout: Layout):
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 30  # never fold a long line (base64 certificates and keys)
    yaml.indent(mapping=layout.mapping, sequence=layout.sequence, offset=layout.offset)
    yaml.explicit_start = layout.explicit_start
    if layout.null:
        # ruamel writes None as an empty value; a file that spells null out keeps its spelling.
        # add_representer changes the class it is called on: use a subclass of our own.
        representer = type("NullRepresenter", (RoundTripRepresenter,), {})
        representer.add_representer(
            type(None), lambda rep, _data: rep.represent_scalar("tag:yaml.org,2002:null", layout.null))
        yaml.Representer = representer
    return yaml


def load(text: str, name: str = "values", max_nodes: int = DEFAULT_MAX_NODES):
    """Parse ``text`` into a round-trip mapping; return ``(tree, layout)``.

    Raises ``ValuesFileError`` saying what is wrong and where, never quoting a value: not YAML, a duplicate
    key, aliases that expand past ``max_nodes`` nodes (billion laughs), several documents, not a mapping.
    An empty file (or one with only comments) is an empty mapping.
    """
    try:
        check_flow_depth(text, name)
    except InputError as exc:
        raise ValuesFileError(str(exc))
    layout = guess_layout(text)
    yaml = _yaml(layout)
    try:
        documents = list(yaml.load_all(text))
        check_expansion(documents, name, max_nodes)
    except YAMLError as exc:
        raise ValuesFileError(yaml_error_message(exc, name))
    except InputError as exc:
        raise ValuesFileError(str(exc))
    except RecursionError:
        raise ValuesFileError("%s is nested too deeply to parse: it is not a values file." % name)
    documents = [doc for doc in documents if doc is not None] if len(documents) > 1 else documents
    if len(documents) > 1:
        raise ValuesFileError("%s holds %d YAML documents; Helm reads a values file as one mapping. "
                              "Keep one document (split the others into their own files)." % (name, len(documents)))
    tree = documents[0] if documents else None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, dict):
        raise ValuesFileError("%s is a YAML %s, not a mapping: a Helm values file must map keys to values; give "
                              "the values file (for example 'global: {domainName: ...}')." % (name, _kind(tree)))
    return tree, layout


def _kind(value) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def dump(tree, layout: Layout = Layout()) -> str:
    """The YAML text of ``tree`` written with ``layout``."""
    stream = io.StringIO()
    _yaml(layout).dump(tree, stream)
    text = stream.getvalue()
    if not layout.final_newline:
        text = text[:-1] if text.endswith("\n") else text
    if layout.newline != "\n":
        text = text.replace("\n", layout.newline)
    return text


def from_plain(obj):
    """Plain dicts and lists as round-trip containers (so migrations can keep positions and comments)."""
    if isinstance(obj, dict):
        out = CommentedMap()
        for key, value in obj.items():
            out[key] = from_plain(value)
        return out
    if isinstance(obj, (list, tuple)):
        return CommentedSeq([from_plain(v) for v in obj])
    return obj


def to_plain(obj):
    """Round-trip containers and scalars as plain dict, list, str, int, float, bool and None."""
    if isinstance(obj, dict):
        return {to_plain(key): to_plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if type(obj).__name__ == "ScalarBoolean":
        return bool(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    return str(obj)
