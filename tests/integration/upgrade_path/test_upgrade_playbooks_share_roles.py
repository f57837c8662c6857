"""upgrade-4.3.yml and upgrade.yml share every role: upgrade.yml on a 4.2 -> 4.3 path runs the roles (and their entry
points: check.yml before any change, then main) that upgrade-4.3.yml runs, and nothing else but the path's own
machinery; upgrade.yml accepts every input of upgrade-4.3.yml. A role added to, or dropped from, one of them fails here.

upgrade-4.3.yml stays its own playbook (its own inputs entry point with the 4.3.9 default and the 4.3-only target
check that issue 12's refusals need); both run every check of their path before their first change, and both end
with the shared cleanup file (playbooks/tasks/upgrade_cleanup.yml). No lab: the playbooks and the hop table are read.
"""
from __future__ import annotations

import re
import sys

import yaml

from ..conftest import REPO_ROOT

INCLUDES = ("ansible.builtin.import_role", "ansible.builtin.include_role")
# Roles only a path of several hops needs (the plan, the hop runner, the data-store steps of 4.9 and 4.10).
PATH_MACHINERY = {"upgrade_path", "upgrade_hop", "mongodb_upgrade", "postgresql_upgrade"}
# Roles whose main entry point changes something (their check.yml must come before the first of them).
MUTATING = {"values", "machine_provisioner_iam", "vm_service_leftovers", "vm_service_security_group", "helm_upgrade"}


def _hooks_43():
    collections = str(REPO_ROOT / ".cache" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.circleci.server.plugins.module_utils.hops import hooks_for  # pylint: disable=import-outside-toplevel
    return hooks_for("4.3")


def _entry(tasks_from) -> str:
    return re.sub(r"\.ya?ml$", "", tasks_from or "main")


def roles_used(tasks, dynamic) -> list:
    """(role, entry point) of every role the tasks import or include, in order, through blocks and the upgrade_hop
    role's hop file; ``dynamic`` gives the roles a templated name stands for (by its loop variable)."""
    found = []
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            found += roles_used(task.get(key), dynamic)
        for module in INCLUDES:
            if module not in task:
                continue
            name, entry = task[module]["name"], _entry(task[module].get("tasks_from"))
            match = re.search(r"\{\{\s*(\w+)\s*\}\}", name)
            if match:
                # A loop over a hop's roles (upgrade_hop.cloud_roles, .post_roles) or over a list the playbook names.
                hop_list = re.search(r"upgrade_hop\.(\w+_roles)", str(task.get("loop", "")))
                found += [(role, entry) for role in dynamic[hop_list.group(1) if hop_list else match.group(1)]]
                continue
            role = name.split(".")[-1]
            found.append((role, entry))
            if role == "upgrade_hop":
                with open(REPO_ROOT / "roles" / "upgrade_hop" / "tasks" / "hop.yml", encoding="utf-8") as handle:
                    found += roles_used(yaml.safe_load(handle), dynamic)
    return found


def playbook_roles(name, dynamic=None) -> list:
    with open(REPO_ROOT / "playbooks" / name, encoding="utf-8") as handle:
        (play,) = yaml.safe_load(handle)
    return roles_used(play["tasks"], dynamic or {})


def test_upgrade_yml_on_a_43_path_runs_every_role_of_upgrade_43_and_nothing_else_but_the_path_machinery():
    hooks = _hooks_43()
    one_hop = playbook_roles("upgrade-4.3.yml")
    path = playbook_roles("upgrade.yml", {
        "upgrade_check_role": hooks.check_roles,
        "cloud_roles": hooks.cloud_roles,
        "post_roles": hooks.post_roles,
        "upgrade_landed_role": (),  # a 4.2 release has no post-checks to finish
    })
    # The inputs role: each playbook has its own entry point (compared option by option below).
    one_hop_set = {used for used in one_hop if used[0] != "inputs"}
    path_set = {used for used in path if used[0] != "inputs" and used[0] not in PATH_MACHINERY}
    assert one_hop_set == path_set, {"only in upgrade-4.3.yml": sorted(one_hop_set - path_set),
                                     "only in upgrade.yml": sorted(path_set - one_hop_set)}
    for roles in (one_hop, path):
        checks = [i for i, (_role, entry) in enumerate(roles) if entry == "check"]
        changes = [i for i, (role, entry) in enumerate(roles) if entry == "main" and role in MUTATING]
        assert max(checks) < min(changes), "every check before the first change: %s" % roles


def test_upgrade_yml_accepts_every_input_of_upgrade_43():
    with open(REPO_ROOT / "roles" / "inputs" / "meta" / "argument_specs.yml", encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    one_hop, path = specs["upgrade_4_3"]["options"], specs["upgrade"]["options"]
    missing = sorted(set(one_hop) - set(path))
    assert missing == [], "upgrade-4.3.yml inputs upgrade.yml does not declare: %s" % missing
    for name in one_hop:
        assert one_hop[name].get("type") == path[name].get("type"), name


def test_both_playbooks_end_with_the_shared_cleanup():
    for name in ("upgrade.yml", "upgrade-4.3.yml"):
        with open(REPO_ROOT / "playbooks" / name, encoding="utf-8") as handle:
            (play,) = yaml.safe_load(handle)
        always = [task for task in play["tasks"] if "always" in task][0]["always"]
        assert [task.get("ansible.builtin.import_tasks") for task in always] == ["tasks/upgrade_cleanup.yml"], name
