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
                "float": {"float"}, "path": {"text"}}
# A survey has no dictionary or list type: those go in the job template's extra variables or the inventory.
NOT_QUESTIONS = {"dict", "list"}
PLAYBOOK_OF = {"upgrade_4_3": "upgrade-4.3.yml", "migrate_3_to_4": "migrate-3-to-4.yml",
               "install": "install.yml", "upgrade": "upgrade.yml", "upgrade_2_19": "upgrade-2.19.yml",
               "migrate_2_19_to_3": "migrate-2.19-to-3.yml"}
VARIABLE = re.compile(r"\b(circleci_[a-z0-9_]+|migrate_3_to_4_[a-z0-9_]+)")
ROLE = re.compile(r"circleci\.server\.([a-z0-9_]+)")
# Set by the playbooks or the lab for their own use, not by an operator (circleci_clock_factor: the lab's clock).
NOT_INPUTS = {"circleci_hosts", "circleci_aws_endpoint_url", "circleci_gcp_base_url", "circleci_gcp_auth_kind",
              "circleci_clock_factor"}
# Inventory group names, not variables.
GROUPS = {"circleci_services_box"}
# Read by a shared role's defaults, but this playbook sets that role variable itself, or never runs the task file
# that uses it: not an input of this playbook.
OVERRIDDEN = {
    "migrate_3_to_4": {
        "circleci_values_file",
        # nomad_terraform's dir / inventory_variables / variables: migrate_nomad passes its own
        "circleci_install_dir", "circleci_domain", "circleci_nomad_terraform_variables",
        # preflight's idle check: kots_preflight runs only its helm, registry and backup task files
        "circleci_require_idle",
    },
    # set by the playbook's vars from circleci_install_dir_override / circleci_escrow_file_override
    "install": {"circleci_install_dir", "circleci_escrow_file"},
}
# Roles a role includes by a templated name (include_role name: "circleci.server.{{ ... }}"): the hop table's.
DYNAMIC_ROLES = {"upgrade_hop": ("machine_provisioner_iam", "vm_service_leftovers", "vm_service_security_group",
                                 "post_upgrade")}


def _survey(entry_point):
    return json.loads((REPO_ROOT / "playbooks" / "awx" / (entry_point + ".survey.json")).read_text())


def _role_files(role):
    role_dir = REPO_ROOT / "roles" / role
    return [p for p in sorted(role_dir.rglob("*.yml")) + sorted(role_dir.rglob("*.j2")) if "meta" not in p.parts]


def _roles_of(playbook_text):
    """The roles a playbook runs: the ones it names, the ones those name, and so on (modules are not roles)."""
    todo = {r for r in ROLE.findall(playbook_text) if (REPO_ROOT / "roles" / r).is_dir()}
    seen = set()
    while todo:
        role = todo.pop()
        seen.add(role)
        named = {r for p in _role_files(role) for r in ROLE.findall(p.read_text())} | set(DYNAMIC_ROLES.get(role, ()))
        todo |= {r for r in named if (REPO_ROOT / "roles" / r).is_dir()} - seen
    return sorted(seen)


def test_the_hop_table_includes_only_roles_the_walk_knows():
    from ansible_collections.circleci.server.plugins.module_utils import hops

    assert set(hops.KNOWN_ROLES) == set(DYNAMIC_ROLES["upgrade_hop"])


def test_surveys_are_generated_from_the_specs(run):
    run(str(REPO_ROOT / ".venv" / "bin" / "python"), str(REPO_ROOT / "hacking" / "awx_surveys.py"), "--check")


@pytest.mark.parametrize("entry_point", sorted(SPECS))
def test_every_survey_variable_is_declared_with_the_same_type(entry_point):
    options = SPECS[entry_point]["options"]
    asked = [question["variable"] for question in _survey(entry_point)["spec"]]
    assert asked == [name for name, option in options.items() if option.get("type", "str") not in NOT_QUESTIONS]
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
    texts = [playbook] + [p.read_text() for role in _roles_of(playbook) for p in _role_files(role)]
    read = {m for text in texts for m in VARIABLE.findall(text)} - NOT_INPUTS - GROUPS - OVERRIDDEN.get(entry_point, set())
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


class _AnsibleTags(yaml.SafeLoader):
    """SafeLoader that reads Ansible's !unsafe tag as the plain string it marks."""


_AnsibleTags.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_every_survey_has_a_job_template_that_runs_its_playbook_with_it(run):
    controller = REPO_ROOT / "playbooks" / "awx" / "configure_controller.yml"
    play = yaml.load(controller.read_text(), Loader=_AnsibleTags)[0]  # noqa: S506 (a loader that only knows !unsafe)
    templates = play["vars"]["circleci_awx_job_templates"]
    assert {t["survey"]: t["playbook"] for t in templates} == {
        entry_point: "playbooks/" + PLAYBOOK_OF[entry_point] for entry_point in SPECS}, (
        "each roles/inputs entry point needs one job template (survey: <entry point>, playbook: its playbook) in "
        "circleci_awx_job_templates of playbooks/awx/configure_controller.yml")
    assert len({t["name"] for t in templates}) == len(templates)
    run("ansible-playbook", "--syntax-check", "-i", "localhost,", str(controller))
