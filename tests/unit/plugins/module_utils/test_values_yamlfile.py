# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile

FILES = Path(__file__).resolve().parents[3] / "integration" / "values_migrate" / "files"


@pytest.mark.parametrize("text,layout", [
    ("a:\n  b:\n    - x\n", yamlfile.Layout(2, 2, False)),
    ("a:\n  b:\n  - x\n", yamlfile.Layout(2, 0, False)),
    ("---\na:\n    b:\n    - x\n", yamlfile.Layout(4, 0, True)),
    ("# c\na: 1\n", yamlfile.Layout(2, 2, False)),
    ("list:\n    - a\nmap:\n    k: v\n", yamlfile.Layout(4, 4, False)),
    ("a: null\nb:\n  - null  # c\n", yamlfile.Layout(2, 2, False, "null")),
    ("a:\r\n  b: 1", yamlfile.Layout(2, 2, False, "", "\r\n", False)),
    ("a: ~\n", yamlfile.Layout(2, 2, False, "~")),
])
def test_guess_layout(text, layout):
    assert yamlfile.guess_layout(text) == layout


@pytest.mark.parametrize("name", sorted(p.name for p in FILES.glob("*.yaml")))
def test_round_trip_is_byte_identical(name):
    text = (FILES / name).read_text()
    tree, layout = yamlfile.load(text)
    assert yamlfile.dump(tree, layout) == text


@pytest.mark.parametrize("text,message", [
    ("a: [1, 2\n", "not valid YAML at line"),
    ("a: 1\na: 2\n", "the key .a. twice"),
    ("- a\n- b\n", "is a YAML list, not a mapping"),
    ("just a string\n", "is a YAML string, not a mapping"),
    ("a: 1\n---\nb: 2\n", "2 YAML documents"),
])
def test_bad_files_say_what_and_where(text, message):
    with pytest.raises(yamlfile.ValuesFileError, match=message):
        yamlfile.load(text, name="values.yaml")


@pytest.mark.parametrize("text", ["a: null\nb: 1\n", "a: ~\nb:\n  - ~\n", "a:\nb: 1\n", "a: 1\r\nb:\r\n  - 2\r\n", "a: 1"])
def test_null_spelling_line_ends_and_last_newline_are_kept(text):
    tree, layout = yamlfile.load(text)
    assert yamlfile.dump(tree, layout) == text


def test_empty_file_is_an_empty_mapping():
    tree, _layout = yamlfile.load("# nothing yet\n")
    assert tree == {}


def test_plain_conversions():
    tree = yamlfile.from_plain({"a": [{"b": 1}], "c": "d"})
    assert isinstance(tree, yamlfile.CommentedMap) and isinstance(tree["a"], yamlfile.CommentedSeq)
    loaded, _layout = yamlfile.load('a: "x"\nb: 1.5\nc: true\nd: [1]\n')
    plain = yamlfile.to_plain(loaded)
    assert plain == {"a": "x", "b": 1.5, "c": True, "d": [1]}
    assert [type(plain["a"]), type(plain), type(plain["d"])] == [str, dict, list]


def test_long_lines_and_block_scalars_are_not_refolded():
    text = ("nomad:\n  server:\n    rpc:\n      mTLS:\n        certificate: " + "Q" * 9000 + "\n"
            "telegraf:\n  config:\n    custom_config_file: |\n      [[inputs.cpu]]\n        percpu = true\n"
            "flow: [" + ", ".join(["item"] * 2000) + "]\n")
    tree, layout = yamlfile.load(text)
    assert yamlfile.dump(tree, layout) == text
