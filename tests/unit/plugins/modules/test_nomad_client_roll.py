# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.modules import nomad_client_roll
from ansible_collections.circleci.server.plugins.module_utils.roll import executor
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.roll_fakes import FakeClock, FakeNomad, FakeProvider, World

BASE_ARGS = {"provider": "aws", "group_name": "clients", "region": "us-east-1", "nomad_address": "http://127.0.0.1:4646",
             "nomad_token": "very-secret-token", "batch_size": "2", "poll_interval": 5, "boot_timeout": 300, "drain_deadline": 600}


@pytest.fixture
def world(monkeypatch):
    clock = FakeClock()
    world = World(clock, size=6, job_lengths=[200] * 6)
    world.new_template()
    monkeypatch.setattr(nomad_client_roll, "build_provider", lambda module, clock: FakeProvider(world))
    monkeypatch.setattr(nomad_client_roll, "build_nomad", lambda module: FakeNomad(world))
    original = executor.Roller.__init__

    def with_fake_clock(self, provider, nomad, options=None, clock=None, **kwargs):
        original(self, provider, nomad, options, world.clock, **kwargs)
    monkeypatch.setattr(executor.Roller, "__init__", with_fake_clock)
    return world


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            nomad_client_roll.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def test_check_mode_returns_the_plan_and_changes_nothing(capsys, world):
    code, result, dummy = run_module(capsys, dict(BASE_ARGS, _ansible_check_mode=True))
    assert code == 0
    assert result["changed"] is True
    assert result["plan"]["batches"] == [["i-001", "i-002"], ["i-003", "i-004"], ["i-005", "i-006"]]
    assert result["plan"]["capacity_floor"] == 6 and result["plan"]["peak_desired"] == 8
    assert result["replaced"] == [] and "Would replace 6 instance(s) in 3 batch(es)" in result["msg"]
    assert world.mutations == []


def test_roll_then_rerun_is_not_changed(capsys, world):
    code, result, out = run_module(capsys, BASE_ARGS)
    assert code == 0, result
    assert result["changed"] is True and len(result["replaced"]) == 6 and result["killed"] == 0
    assert len(result["batches"]) == 3 and result["duration"] > 0
    assert "very-secret-token" not in out
    code, result, dummy = run_module(capsys, BASE_ARGS)
    assert code == 0 and result["changed"] is False and result["replaced"] == []


def test_drain_deadline_stop_fails_with_advice_and_events(capsys, world):
    world.place("node-i-001", 5000)
    code, result, dummy = run_module(capsys, dict(BASE_ARGS, drain_deadline=300))
    assert code == 1 and result["failed"] is True
    assert "drain_deadline=300" in result["msg"] and "Re-run" in result["msg"]
    assert result["changed"] is True and result["replaced"] == [] and result["batches"][0]["batch"] == 1
    assert world.killed == []


def test_gcp_needs_a_project(capsys, world):
    code, result, dummy = run_module(capsys, dict(BASE_ARGS, provider="gcp"))
    assert code == 1 and "project" in result["msg"]


def test_bad_batch_size_is_explained(capsys, world):
    code, result, dummy = run_module(capsys, dict(BASE_ARGS, batch_size="lots"))
    assert code == 1 and "batch_size" in result["msg"]
