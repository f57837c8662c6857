# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""planned_change: changed with its message in check mode, skipped in a real run, refuses an unknown option."""
from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.circleci.server.plugins.action.planned_change import ActionModule


def run(check_mode: bool, **args) -> dict:
    task = MagicMock(args=args, async_val=0)
    play_context = MagicMock(check_mode=check_mode)
    action = ActionModule(task, MagicMock(), play_context, MagicMock(), MagicMock(), MagicMock())
    return action.run(task_vars={})


def test_check_mode_reports_the_change_and_shows_it_at_every_verbosity():
    result = run(True, msg="Would create the S3 bucket b.")
    assert result["changed"] is True and result["msg"] == "Would create the S3 bucket b."
    assert result["_ansible_verbose_always"] is True
    assert not result.get("skipped")


def test_a_real_run_skips_it_and_changes_nothing():
    result = run(False, msg="Would create the S3 bucket b.")
    assert result["skipped"] is True and not result.get("changed")
    assert "msg" not in result


def test_an_unknown_option_is_refused():
    with pytest.raises(AnsibleActionFail, match="Invalid options.*when_done"):
        run(True, msg="x", when_done="y")
