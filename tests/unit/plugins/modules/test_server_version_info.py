# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.modules import server_version_info


def run_module(capsys, args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            server_version_info.main()
    result = json.loads(capsys.readouterr().out)
    return exit_info.value.code, result


def test_supported_combination_reports_and_changes_nothing(capsys):
    code, result = run_module(capsys, {"server_version": "4.3.9", "kubernetes_version": "v1.28.2"})
    assert code == 0
    assert result["changed"] is False
    assert result["kubernetes_supported"] is True
    assert result["kubernetes_range"] == {"min": "1.26", "max": "1.29"}


def test_unsupported_kubernetes_fails_only_when_asked(capsys):
    args = {"server_version": "4.3.9", "kubernetes_version": "1.30.1"}
    code, result = run_module(capsys, args)
    assert code == 0 and result["kubernetes_supported"] is False
    code, result = run_module(capsys, dict(args, fail_on_problem=True))
    assert code == 1
    assert result["failed"] is True
    assert "outside the range" in result["msg"]


def test_unknown_version_fails_with_advice(capsys):
    code, result = run_module(capsys, {"server_version": "4.11.0"})
    assert code == 1
    assert "Upgrade the circleci.server collection" in result["msg"]


def test_check_mode_is_supported(capsys):
    code, result = run_module(capsys, {"server_version": "4.7.7", "_ansible_check_mode": True})
    assert code == 0 and result["broken"] is True
