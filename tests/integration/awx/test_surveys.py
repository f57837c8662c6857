"""AWX surveys agree with what the playbooks declare and read.

Each survey (playbooks/awx/<entry point>.survey.json) is generated from the `inputs` role's argument spec
entry point of its playbook; the playbook validates its variables with that entry point first, so an AWX
answer of the wrong type stops the run before any task, and every circleci_* variable that the playbook
and its roles read is declared there (a survey is complete).
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

from ..conftest import REPO_ROOT

SPECS = yaml.safe_load((REPO_ROOT / "roles" / "inputs" / "meta" / "argument_specs.yml").read_text())["argument_specs"]
SURVEY_TYPES = {"str": {"text", "password", "multiplechoice"}, "bool": {"multiplechoice"}, "int": {"integer"},
                "path": {"text"}}
PLAYBOOK_OF = {"upgrade_4_3": "upgrade-4.3.yml", "migrate_3_to_4": "migrate-3-to-4.yml",
               "install": "install.yml", "upgrade": "upgrade.yml", "upgrade_2_19": "upgrade-2.19.yml"}
VARIABLE = re.compile(r"\b(circleci_[a-z0-9_]+|migrate_3_to_4_[a-z0-9_]+)")
# Set by the playbooks or the lab for their own use, not by an operator.
NOT_INPUTS = {"circleci_hosts", "circleci_aws_endpoint_url", "circleci_gcp_base_url", "circleci_gcp_auth_kind"}
# Read by a shared role's defaults but overridden by this playbook, so not an input of it.
OVERRIDDEN = {"migrate_3_to_4": {"circleci_values_file"}}


def _survey(entry_point):
    return json.loads((REPO_ROOT / "playbooks" / "awx" / (entry_point + ".survey.json")).read_text())


def _roles_of(playbook_text):
    return sorted(set(re.findall(r"circleci\.server\.([a-z0-9_]+)", playbook_text)))


def test_surveys_are_generated_from_the_specs(run):
    run(str(REPO_ROOT / ".venv" / "bin" / "python"), str(REPO_ROOT / "hacking" / "awx_surveys.py"), "--check")


@pytest.mark.parametrize("entry_point", sorted(SPECS))
def test_every_survey_variable_is_declared_with_the_same_type(entry_point):
    options = SPECS[entry_point]["options"]
    for question in _survey(entry_point)["spec"]:
        option = options.get(question["variable"])
        assert option is not None, "%s asks for %s, which no argument spec declares" % (entry_point, question["variable"])
        kind = option.get("type", "str")
        assert question["type"] in SURVEY_TYPES[kind], (question["variable"], kind, question["type"])
        assert (question["type"] == "password") == bool(option.get("no_log")), question["variable"]
        if kind == "bool":
            assert question["default"] == ("true" if option.get("default") else "false")
        elif question["type"] != "password":
            assert question["default"] == ("" if option.get("default") is None else option["default"])
        if option.get("choices"):
            assert question["choices"] == [str(c) for c in option["choices"]]


@pytest.mark.parametrize("entry_point", sorted(SPECS))
def test_the_playbook_validates_its_inputs_first_and_declares_every_variable_it_reads(entry_point):
    playbook = (REPO_ROOT / "playbooks" / PLAYBOOK_OF[entry_point]).read_text()
    tasks = yaml.safe_load(playbook)[0]["tasks"]
    first = tasks[0].get("ansible.builtin.import_role", {})
    assert first == {"name": "circleci.server.inputs", "tasks_from": entry_point}, tasks[0]
    texts = [playbook]
    for role in _roles_of(playbook):
        role_dir = REPO_ROOT / "roles" / role
        texts += [p.read_text() for p in role_dir.rglob("*.yml") if "meta" not in p.parts]
        texts += [p.read_text() for p in role_dir.rglob("*.j2")]
    read = {m for text in texts for m in VARIABLE.findall(text)} - NOT_INPUTS - OVERRIDDEN.get(entry_point, set())
    read = {name for name in read if not name.startswith("circleci_server")}
    undeclared = sorted(read - set(SPECS[entry_point]["options"]))
    assert not undeclared, "%s reads %s, which roles/inputs entry point %s does not declare" % (
        PLAYBOOK_OF[entry_point], undeclared, entry_point)


def test_a_wrong_type_stops_the_run_before_any_task(run, tmp_path):
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(REPO_ROOT / "playbooks" / "upgrade-4.3.yml"),
               "-e", "circleci_terminate_leftover_vms=maybe", "-e", "circleci_cloud=azure",
               "-e", "circleci_registry_password=canary-Survey-7731", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "circleci_terminate_leftover_vms" in out and "must be one of: aws, gcp" in out
    assert "canary-Survey-7731" not in out
    assert "ok=0" in out and "changed=0" in out
