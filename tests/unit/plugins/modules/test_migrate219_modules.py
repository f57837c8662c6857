# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""migrate219_archive_info and migrate219_compare: results, failures that say what to do, check mode."""
from __future__ import annotations

import hashlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.modules import migrate219_archive_info, migrate219_compare

RUN = "20260105T101500Z"


def _call(module, capsys, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_archive_info_plans_the_import_in_check_mode_too(tmp_path, capsys):
    data = b"keys"
    (tmp_path / "circle-data.tar.gz").write_bytes(data)
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"run_id": RUN, "archives": {"keys": {"sha256": hashlib.sha256(data).hexdigest()}}}))
    for check_mode in (False, True):
        code, result = _call(migrate219_archive_info, capsys, {"run_dir": str(tmp_path), "run_id": RUN,
                                                               "datastores": ["keys"]}, check_mode)
        assert code == 0 and not result["changed"] and result["to_import"] == []
        assert result["skipped"] == ["postgresql", "mongodb", "vault"]


def test_archive_info_fails_with_what_to_do(tmp_path, capsys):
    code, result = _call(migrate219_archive_info, capsys, {"run_dir": str(tmp_path), "run_id": RUN, "datastores": ["keys"]})
    assert code == 1 and result["failed"] and "run the playbook again" in result["msg"]


def test_compare_equal_and_different(capsys):
    source = "== circle\npublic.builds|2|ab\n"
    code, result = _call(migrate219_compare, capsys, {"datastore": "postgresql", "source_output": source,
                                                      "target_output": source})
    assert code == 0 and result["equal"] and result["differences"] == []
    code, result = _call(migrate219_compare, capsys, {"datastore": "postgresql", "source_output": source,
                                                      "target_output": "== circle\npublic.builds|1|cd\n"})
    assert code == 1 and "circle.public.builds is [2, 'ab'] on 2.19 and [1, 'cd'] on 3.x" in result["msg"]
    code, result = _call(migrate219_compare, capsys, {"datastore": "mongodb", "source_output": '{"a": {"b": 1}}',
                                                      "target_output": '{"a": {"b": 2}}', "fail_on_difference": False})
    assert code == 0 and not result["equal"] and result["target"] == {"a": {"b": 2}}
    code, result = _call(migrate219_compare, capsys, {"datastore": "mongodb", "source_output": "{}",
                                                      "target_output": "Error: Authentication failed."})
    assert code == 1 and "cannot read what the 3.x side printed" in result["msg"]
