# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: migrate the largest documented values tree from 4.0 to 4.10 and print the time per hop.

The tree is the union of every key of every documented values table (values-4.0.tsv ... values-4.10.tsv),
in its oldest shape (vm_service, global.tracing, config_path, telegraf.config.custom_config_file...), with each
key's description as a comment, so every hop has work to do. ``--scale N`` adds N copies of the service blocks
under user keys, for a larger file.

    . hacking/env.sh
    PYTHONPATH=.cache/collections python tests/bench/bench_values_migrate.py [--values-dir DIR] [--scale N]
"""
from __future__ import annotations

import argparse
import copy
import difflib
import json
import re
import statistics
import sys
import time
from pathlib import Path

from ansible_collections.circleci.server.plugins.module_utils.values import migrations as M
from ansible_collections.circleci.server.plugins.module_utils.values import tree as T
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile

DEFAULT_DIR = Path("/work/shared/reference/values")
# Keys of later releases whose old names are put in the tree instead, so that the hops rename them.
NEWER_NAMES = {
    "machine_provisioner": None, "global.otel": None, "telegraf.custom_config": None,
    "machine_provisioner.custom_config": None, "docker_provisioner.custom_config": None,
}
OLD_SHAPES = {
    "vm_service": {"enabled": True, "dlc_lifespan_days": 3, "machine_agent_base_url": "https://mirror/mp",
                   "config_path": "/etc/mp.yaml",
                   "providers": {"ec2": {"enabled": True, "region": "us-east-1", "securityGroupId": "sg-1",
                                         "tags": ["team", "ci", "env", "prod"]},
                                 "gcp": {"enabled": False, "zone": "us-east1-b"}}},
    "docker_provisioner": {"config_path": "/etc/dp.yaml"},
    "global": {"tracing": {"enabled": False, "collector_host": "", "sample_rate": 1},
               "imagePullSecrets": [{"name": "regcred"}]},
    "telegraf": {"config": {"custom_config_file": "[[inputs.cpu]]\n"}},
}


def _value(kind, default):
    try:
        value = json.loads(default)
    except ValueError:
        value = default.strip('"`+')
    if kind == "int" and not isinstance(value, int):
        return 0
    if kind == "bool" and not isinstance(value, bool):
        return False
    return value


def _set(tree, parts, value, comment):
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = yamlfile.CommentedMap()
            node[part] = child
        node = child
    if parts[-1] not in node:
        node[parts[-1]] = value
        if comment:
            node.yaml_add_eol_comment(comment[:100], parts[-1])


def documented_tree(values_dir: Path, scale: int):
    tree = yamlfile.CommentedMap()
    for tsv in sorted(values_dir.glob("values-4.*.tsv")):
        for line in tsv.read_text(encoding="utf-8").splitlines():
            cols = line.split("\t") + ["", "", ""]
            key, kind, default, description = cols[:4]
            if not key or re.search(r"[\[\]\"'\u201c\u201d`]", key):
                continue
            if any(key == name or key.startswith(name + ".") for name in NEWER_NAMES):
                continue
            parts = key.split(".")
            _set(tree, parts, yamlfile.from_plain(_value(kind.strip("`"), default)),
                 re.sub(r"\s+", " ", description).replace("#", ""))
    for top, block in OLD_SHAPES.items():
        target = tree.setdefault(top, yamlfile.CommentedMap())
        for key, value in block.items():
            target[key] = yamlfile.from_plain(value)
    services = [k for k, v in tree.items() if isinstance(v, dict)]
    for copy_index in range(scale):
        for name in services:
            tree["u_copy%d_%s" % (copy_index, name)] = copy.deepcopy(tree[name])
    return tree


def _time(function, repeat, setup=None):
    samples = []
    for _run in range(repeat):
        argument = setup() if setup else None
        start = time.perf_counter()
        result = function(argument) if setup else function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--scale", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.values_dir.is_dir():
        sys.exit("%s is not a directory of values-4.X.tsv tables (--values-dir)" % args.values_dir)

    text = yamlfile.dump(documented_tree(args.values_dir, args.scale))
    tree, layout = yamlfile.load(text)
    keys = sum(1 for _item in T.walk(tree))
    print("values file: %d lines, %d bytes, %d keys and items (scale %d), median of %d runs" % (
        len(text.splitlines()), len(text), keys, args.scale, args.repeat))
    print("%-12s %10s %10s %8s %8s" % ("step", "ms", "pure ms", "changes", "actions"))
    load_s, (tree, layout) = _time(lambda: yamlfile.load(text), args.repeat)
    print("%-12s %10.2f" % ("load", load_s * 1000))
    current = tree
    for pair in M.plan("4.0.6", "4.10.0"):
        # "ms": the hop as migrate() runs it (in place, on its own copy); "pure ms": with the copy of the tree.
        seconds, result = _time(lambda tree, pair=pair: M.HOPS[pair](tree, in_place=True), args.repeat,
                                setup=lambda current=current: copy.deepcopy(current))
        pure, _pure = _time(lambda pair=pair, current=current: M.HOPS[pair](current), args.repeat)
        print("%-12s %10.2f %10.2f %8d %8d" % ("%s->%s" % pair, seconds * 1000, pure * 1000, len(result.changes),
                                               len(result.manual_actions)))
        current = result.tree
    dump_s, out = _time(lambda: yamlfile.dump(current, layout), args.repeat)
    print("%-12s %10.2f" % ("dump", dump_s * 1000))

    def whole_run():
        return yamlfile.dump(M.migrate(yamlfile.load(text)[0], "4.0.6", "4.10.0").tree, layout)

    total_s, _total = _time(whole_run, args.repeat)
    print("%-12s %10.2f   (load + migrate 4.0 -> 4.10 + dump)" % ("total", total_s * 1000))
    matcher = difflib.SequenceMatcher(None, text.splitlines(), out.splitlines(), autojunk=False)
    changed = sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")
    print("lines that differ after 4.0 -> 4.10: %d of %d" % (changed, len(text.splitlines())))


if __name__ == "__main__":
    main()
