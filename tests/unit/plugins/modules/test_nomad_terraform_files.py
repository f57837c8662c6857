# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nomad_terraform_files: writes once, check mode writes nothing, secrets masked in the diff, outputs read."""
from __future__ import annotations

import json
import os
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.circleci.server.plugins.modules import nomad_terraform_files

OUTPUTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "scenarios", "aws-empty", "nomad-aws-outputs.json")
INPUTS = {"aws_region": "us-east-1", "nomad_server_hostname": "circleci.example.com", "basename": "cci",
          "vpc_id": "vpc-1", "subnets": ["subnet-1"], "dns_server": "10.0.0.2", "blocked_cidrs": [], "nodes": 3}


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            nomad_terraform_files.main()
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out), out


def test_writes_once_then_nothing(capsys, tmp_path):
    dest = str(tmp_path / "tf")
    base = dict(dest=dest, cloud="aws", server_version="4.10.0", variables=INPUTS)
    code, result, out = run(capsys, _ansible_check_mode=True, _ansible_diff=True, **base)
    assert code == 0 and result["changed"] and not os.path.exists(dest)
    assert "(masked)" in out                          # the tfvars diff is masked
    code, result, _out = run(capsys, **base)
    assert result["changed"] and result["missing"] == [] and result["tag"] == "4.10.0"
    assert stat.S_IMODE(os.stat(os.path.join(dest, "terraform.tfvars.json")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    code, result, _out = run(capsys, **base)
    assert code == 0 and not result["changed"]
    assert result["command"].startswith("cd %s && terraform init && terraform apply" % dest)


def test_reads_outputs(capsys, tmp_path):
    code, result, _out = run(capsys, dest=str(tmp_path), cloud="aws", tag="4.10.0", variables=INPUTS,
                             outputs_file=OUTPUTS, region="us-east-1")
    assert code == 0 and result["helm_values"]["nomad"]["server"]["rpc"]["mTLS"]["enabled"] is True
    code, result, _out = run(capsys, dest=str(tmp_path), cloud="aws", tag="4.10.0", outputs_file=str(tmp_path / "none"))
    assert code == 1 and "terraform init" in result["msg"]
