# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the values migrations, over generated values trees (hypothesis).

* applying a hop twice equals applying it once (and the second time changes nothing);
* every key that no hop names survives, with its value, at its (possibly renamed) place;
* 4.0 -> 4.10 equals the composition of its hops;
* every comment of a values file survives the whole chain.
"""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.circleci.server.plugins.module_utils.values import migrations as M
from ansible_collections.circleci.server.plugins.module_utils.values import tree as T
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

user_keys = st.from_regex(r"u_[a-z][a-z0-9]{0,5}", fullmatch=True)
texts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
scalars = st.one_of(st.integers(-1000, 1000), st.booleans(), st.none(), texts)
user_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(scalars, min_size=1, max_size=3),
                            st.dictionaries(user_keys, inner, min_size=1, max_size=3)),
    max_leaves=6)
user_maps = st.dictionaries(user_keys, user_values, max_size=3)


@st.composite
def values_trees(draw):
    """A 4.0/4.2-shaped values tree: user keys everywhere, and the keys the hops rename or convert."""
    tree = dict(draw(user_maps), u_always="x")
    if draw(st.booleans()):
        block = dict(draw(user_maps))
        if draw(st.booleans()):
            block["imagePullSecrets"] = [{"name": n} for n in draw(st.lists(texts, min_size=1, max_size=2))]
        if draw(st.booleans()):
            block["tracing"] = dict(draw(user_maps), enabled=draw(st.booleans()))
        tree["global"] = block
    if draw(st.booleans()):
        vm = dict(draw(user_maps))
        if draw(st.booleans()):
            vm["dlc_lifespan_days"] = draw(st.integers(1, 30))
        if draw(st.booleans()):
            vm["machine_agent_base_url"] = draw(texts)
        if draw(st.booleans()):
            vm["config_path"] = draw(texts)
        providers = {}
        if draw(st.booleans()):
            keys = draw(st.lists(texts, unique=True, max_size=3))
            tags = []
            for key in keys:
                tags.extend([key, draw(texts)])
            providers["ec2"] = dict(draw(user_maps), tags=tags)
        if draw(st.booleans()):
            providers["gcp"] = dict(draw(user_maps), zone=draw(texts))
        vm["providers"] = providers
        tree["vm_service"] = vm
    if draw(st.booleans()):
        tree["docker_provisioner"] = dict(draw(user_maps), config_path=draw(texts))
    if draw(st.booleans()):
        config = dict(draw(user_maps), u_kept=1, custom_config_file=draw(texts))
        tree["telegraf"] = dict(draw(user_maps), config=config)
    if draw(st.booleans()):
        tree["nomad"] = {"auto_scaler": {"aws": dict(draw(user_maps), autoScalingGroup=draw(texts) + "_circleci_nomad_clients_asg")}}
    return tree


def _mapped(path):
    """Where a user key of a 4.0 tree lives after 4.0 -> 4.10."""
    path = list(path)
    if path[:1] == ["vm_service"]:
        path[0] = "machine_provisioner"
    if path[:2] == ["global", "tracing"]:
        path[1] = "otel"
    return tuple(path)


def _apply_all(tree):
    for pair in M.plan("4.0.6", "4.10.0"):
        tree = M.HOPS[pair](tree).tree
    return tree


@SETTINGS
@given(values_trees(), st.sampled_from(sorted(M.HOPS)))
def test_a_hop_twice_equals_once(values, pair):
    once = M.HOPS[pair](yamlfile.from_plain(values))
    twice = M.HOPS[pair](once.tree)
    assert yamlfile.to_plain(twice.tree) == yamlfile.to_plain(once.tree)
    assert [c for c in twice.changes if c.action != "warning"] == []
    assert yamlfile.dump(twice.tree) == yamlfile.dump(once.tree)


@SETTINGS
@given(values_trees())
def test_keys_no_hop_names_survive(values):
    out = yamlfile.to_plain(M.migrate(yamlfile.from_plain(values), "4.0.6", "4.10.0").tree)
    for path, value in T.walk(values):
        if path and isinstance(path[-1], str) and path[-1].startswith("u_"):
            assert T.get(out, _mapped(path), default=KeyError) == value, path


@SETTINGS
@given(values_trees())
def test_the_chain_is_the_composition_of_its_hops(values):
    chained = M.migrate(yamlfile.from_plain(values), "4.0.6", "4.10.0")
    composed = _apply_all(yamlfile.from_plain(values))
    assert yamlfile.dump(chained.tree) == yamlfile.dump(composed)
    assert chained.hops == ["%s->%s" % pair for pair in sorted(M.HOPS, key=lambda p: [int(x) for x in p[0].split(".")])]


def _emit(obj, indent, counter, lines):
    """Block YAML with a distinct comment at the end of every line."""
    def comment():
        counter[0] += 1
        return "  # c%d" % counter[0]

    def scalar(value):
        if isinstance(value, dict) or isinstance(value, list):
            return "{}" if isinstance(value, dict) else "[]"
        return json.dumps(value)

    pad = " " * indent
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            lines.append("%s%s:%s" % (pad, key, comment()))
            _emit(value, indent + 2, counter, lines)
        elif isinstance(value, list) and value:
            lines.append("%s%s:%s" % (pad, key, comment()))
            for item in value:
                if isinstance(item, dict) and item:
                    (first, first_value), rest = list(item.items())[0], list(item.items())[1:]
                    lines.append("%s  - %s: %s%s" % (pad, first, scalar(first_value), comment()))
                    _emit(dict(rest), indent + 4, counter, lines)
                else:
                    lines.append("%s  - %s%s" % (pad, scalar(item), comment()))
        else:
            lines.append("%s%s: %s%s" % (pad, key, scalar(value), comment()))


@SETTINGS
@given(values_trees())
def test_comments_survive_the_chain(values):
    counter, lines = [0], ["# head"]
    _emit(values, 0, counter, lines)
    text = "\n".join(lines) + "\n"
    tree, layout = yamlfile.load(text)
    assert yamlfile.dump(tree, layout) == text
    out = yamlfile.dump(M.migrate(tree, "4.0.6", "4.10.0").tree, layout)
    for number in range(1, counter[0] + 1):
        assert "# c%d\n" % number in out or "# c%d " % number in out, (number, text, out)
