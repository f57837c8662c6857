# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.circleci.server.plugins.module_utils.roll.model import GroupInstance, GroupState, RollError
from ansible_collections.circleci.server.plugins.module_utils.roll.planner import make_plan, parse_batch_size


@pytest.mark.parametrize("value, outdated, expected", [
    ("1", 6, 1), (2, 6, 2), ("25%", 6, 2), ("10%", 50, 5), ("100%", 7, 7), ("1%", 3, 1), (" 3 ", 10, 3), ("20 %", 50, 10),
])
def test_parse_batch_size(value, outdated, expected):
    assert parse_batch_size(value, outdated) == expected


@pytest.mark.parametrize("value", ["0", "-1", "abc", "0%", "150%", "1.5"])
def test_parse_batch_size_rejects(value):
    with pytest.raises(RollError, match="batch_size"):
        parse_batch_size(value, 6)


def group(outdated, current=0, desired=None, max_size=None):
    instances = [GroupInstance("i-old-%02d" % i, False, reason="old") for i in range(outdated)]
    instances += [GroupInstance("i-new-%02d" % i, True) for i in range(current)]
    size = desired if desired is not None else outdated + current
    return GroupState("asg", size, max_size=max_size if max_size is not None else size, instances=instances)


def test_plan_batches_floor_and_peak():
    plan = make_plan(group(6), "2")
    assert plan["batches"] == [["i-old-00", "i-old-01"], ["i-old-02", "i-old-03"], ["i-old-04", "i-old-05"]]
    assert plan["capacity_floor"] == 6 and plan["peak_desired"] == 8 and plan["surge"] == [2, 2, 2]


def test_plan_puts_in_progress_instances_first():
    plan = make_plan(group(4), "2", in_progress_ids=["i-old-03"])
    assert plan["batches"][0] == ["i-old-03", "i-old-00"]


def test_plan_after_interruption_needs_no_new_surge():
    # 6 clients, batch 1 done, batch 2 surged (2 new) and interrupted: desired 8, 4 old, 4 new
    plan = make_plan(group(4, current=4), "2", target=6)
    assert plan["peak_desired"] == 8
    assert plan["target_desired"] == 6


def test_nothing_outdated_is_an_empty_plan():
    plan = make_plan(group(0, current=3), "25%")
    assert plan["batches"] == [] and plan["batch_size"] == 0 and plan["peak_desired"] == 3


def test_max_unavailable_reduces_floor_and_surge():
    plan = make_plan(group(6), "3", max_unavailable=1)
    assert plan["capacity_floor"] == 5 and plan["surge"] == [2, 2] and plan["peak_desired"] == 8
    plan = make_plan(group(6), "2", max_unavailable=2)
    assert plan["surge"] == [0, 0, 0] and plan["peak_desired"] == 6


def test_negative_max_unavailable_is_refused():
    with pytest.raises(RollError):
        make_plan(group(2), "1", max_unavailable=-1)
