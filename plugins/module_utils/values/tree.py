# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edits of a values tree that keep each key's position and its comments.

Works on ruamel round-trip containers (``CommentedMap``: ``insert`` and ``ca``) and, more plainly,
on ordinary dicts. Paths are tuples of keys. Plain Python with no Ansible import.
"""

from __future__ import annotations

_MISSING = object()


def dotted(path) -> str:
    return ".".join(str(part) for part in path)


def get(tree, path, default=None):
    """The value at ``path``, or ``default`` when any step is missing or not a mapping."""
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def has(tree, path) -> bool:
    return get(tree, path, _MISSING) is not _MISSING


def parent(tree, path):
    """The mapping that holds the last key of ``path``, or None."""
    node = get(tree, path[:-1]) if len(path) > 1 else tree
    return node if isinstance(node, dict) else None


def _comment(mapping, key):
    ca = getattr(mapping, "ca", None)
    if ca is None:
        return None
    return ca.items.pop(key, None)


def _set_comment(mapping, key, comment):
    if comment is not None and getattr(mapping, "ca", None) is not None:
        mapping.ca.items[key] = comment


def insert(mapping, position, key, value, comment=None):
    """Put ``key: value`` at ``position`` in ``mapping`` (a plain dict is rebuilt in order)."""
    if hasattr(mapping, "insert"):
        mapping.insert(position, key, value)
        _set_comment(mapping, key, comment)
        return
    items = list(mapping.items())
    items.insert(position, (key, value))
    mapping.clear()
    mapping.update(items)


def rename(mapping, old, new):
    """Rename ``old`` to ``new`` in place: same position, same comments, same value object."""
    position = list(mapping.keys()).index(old)
    value = mapping[old]
    comment = _comment(mapping, old)
    del mapping[old]
    insert(mapping, position, new, value, comment)


def replace(mapping, key, value):
    """Give ``key`` a new value object in place (position and comments kept)."""
    position = list(mapping.keys()).index(key)
    comment = _comment(mapping, key)
    del mapping[key]
    insert(mapping, position, key, value, comment)


def replace_item(seq, index, value):
    """Replace ``seq[index]`` by a scalar; the comment after a replaced mapping item stays on that item."""
    old = seq[index]
    seq[index] = value
    old_ca = getattr(old, "ca", None)
    seq_ca = getattr(seq, "ca", None)
    if old_ca is None or seq_ca is None or index in seq_ca.items or not isinstance(old, dict) or not old:
        return
    last = old_ca.items.get(list(old.keys())[-1])
    if last and len(last) > 2 and last[2] is not None:
        seq_ca.items[index] = [last[2], None, None, None]


def move(source, key, target, new_key, after=None):
    """Move ``source[key]`` to ``target[new_key]``, just after ``after`` in ``target`` (else at its end)."""
    value = source[key]
    comment = _comment(source, key)
    del source[key]
    keys = list(target.keys())
    position = keys.index(after) + 1 if after in keys else len(keys)
    insert(target, position, new_key, value, comment)


def delete(mapping, key):
    """Remove ``key``. Comment lines written after its value (the next block's heading) are kept when
    the previous key holds a scalar that has no comment of its own."""
    comment = _comment(mapping, key)
    keys = list(mapping.keys())
    index = keys.index(key)
    del mapping[key]
    token = comment[2] if comment is not None and len(comment) > 2 else None
    if token is None or index == 0:
        return
    previous = keys[index - 1]
    if previous in mapping.ca.items or isinstance(mapping[previous], (dict, list)):
        return
    _own, _sep, following = token.value.partition("\n")
    if following.strip():
        token.value = "\n" + following
        mapping.ca.items[previous] = [None, None, token, None]


def walk(tree, path=()):
    """Every (path, value) pair of a tree, mappings and lists included, depth first."""
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from walk(value, path + (key,))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from walk(value, path + (index,))
