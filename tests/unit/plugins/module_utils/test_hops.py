# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hop table and the MongoDB chain over the whole release catalog."""
from __future__ import annotations

import pytest

from ansible_collections.circleci.server.plugins.module_utils import hops
from ansible_collections.circleci.server.plugins.module_utils.versions import Catalog, plan_upgrade

NEWEST = str(Catalog().minors[-1].last_patch)


def path(current, target=NEWEST, **overrides):
    plan = plan_upgrade(current, target, catalog=Catalog(kubernetes_overrides=overrides or {
        "4.2": "1.22-1.35", "4.3": "1.22-1.35", "4.4": "1.22-1.35", "4.5": "1.22-1.35", "4.6": "1.22-1.35",
        "4.7": "1.22-1.35"}))
    assert plan.ok, plan.refused
    return plan.as_dict()["path"]


def test_every_row_names_a_known_minor_and_known_roles():
    minors = {release.minor for release in Catalog().minors}
    for row in hops.HOOKS:
        assert row.minor in minors
        assert set(row.cloud_roles + row.post_roles + row.check_roles) <= set(hops.KNOWN_ROLES)
        # a check runs before the first change for a role the hop runs afterwards
        assert set(row.check_roles) <= set(row.cloud_roles + row.post_roles)
        assert row.source


def test_the_whole_path_lists_every_hop_with_its_hooks():
    plan = hops.plan_hops(path("4.2.5"), mongodb_version="7.0.15-debian-12-r2", terraform_version="4.10.0")
    assert plan["versions"] == ["4.2.7", "4.3.9", "4.4.7", "4.5.5", "4.6.6", "4.7.15", "4.8.12", "4.9.5", NEWEST]
    assert plan["first_blocked"] is None
    by_target = {hop["to"]: hop for hop in plan["hops"]}
    assert by_target["4.2.7"]["kind"] == "patch" and by_target["4.2.7"]["cloud_roles"] == []
    assert by_target["4.3.9"]["cloud_roles"] == ["machine_provisioner_iam", "vm_service_leftovers"]
    assert by_target["4.3.9"]["post_roles"] == ["vm_service_security_group", "post_upgrade"]
    assert by_target["4.3.9"]["check_roles"] == ["machine_provisioner_iam", "vm_service_leftovers", "vm_service_security_group"]
    assert by_target["4.4.7"]["check_roles"] == []
    assert by_target["4.7.15"]["terraform_module"] == "4.7.0"
    assert by_target["4.9.5"]["mongodb"]["min"] == "4.4" and by_target[NEWEST]["mongodb"]["min"] == "7.0"
    assert [m["id"] for m in by_target[NEWEST]["manual_after"]] == ["workflow-retention"]


def test_a_mongodb_too_old_blocks_the_hop_that_needs_it_with_the_procedure():
    plan = hops.plan_hops(path("4.2.7"), namespace="ci", mongodb_version="3.6.22-debian-9-r38", mongodb_fcv="3.6",
                          terraform_version="4.10.0")
    assert plan["hops"][plan["first_blocked"]]["to"] == "4.9.5"
    reason = " ".join(plan["hops"][plan["first_blocked"]]["blocked"])
    assert "MongoDB 4.4 or later" in reason and "mongodump" in reason and "kubectl -n ci" in reason
    assert reason.count("setFeatureCompatibilityVersion") == 3  # 4.0, 4.2, 4.4


def test_the_opt_in_plans_the_chain_per_hop_instead():
    plan = hops.plan_hops(path("4.2.7"), mongodb_version="3.6.22-debian-9-r38", mongodb_fcv="3.6",
                          terraform_version="4.10.0", upgrade_mongodb=True)
    assert plan["first_blocked"] is None
    chains = [[s["version"] for s in hop["mongodb"]["steps"]] for hop in plan["hops"] if hop["mongodb"]]
    assert chains == [["4.0", "4.2", "4.4"], ["5.0", "6.0", "7.0"]]


def test_terraform_module_gates_from_47():
    plan = hops.plan_hops(path("4.6.6"), mongodb_version="7.0.15", terraform_version="4.7.0")
    assert plan["hops"][plan["first_blocked"]]["to"] == "4.8.12"
    assert "circleci_nomad_terraform_version: 4.8.0" in plan["hops"][plan["first_blocked"]]["blocked"][0]
    unknown = hops.plan_hops(path("4.6.6"), mongodb_version="7.0.15")
    assert unknown["first_blocked"] == 0
    with pytest.raises(hops.HopsError):
        hops.plan_hops(path("4.6.6"), terraform_version="four")


def test_postgresql_12_gets_a_recommendation_not_a_gate():
    plan = hops.plan_hops(path("4.9.5"), mongodb_version="7.0.15", postgresql_version="12.16.37-7629bfd",
                          terraform_version="4.10.0")
    assert plan["first_blocked"] is None
    assert len(plan["warnings"]) == 1 and "PostgreSQL 14" in plan["warnings"][0]
    assert "circleci_upgrade_postgresql: true" in plan["warnings"][0] and "pg_dumpall" in plan["warnings"][0]
    assert plan["hops"][-1]["postgresql"] is None


def test_the_postgresql_opt_in_plans_the_step_on_the_hop_that_recommends_14_only():
    plan = hops.plan_hops(path("4.2.7"), mongodb_version="7.0.15", postgresql_version="12.6.0",
                          terraform_version="4.10.0", upgrade_postgresql=True)
    assert plan["warnings"] == []
    steps = {hop["to"]: hop["postgresql"] for hop in plan["hops"] if hop["postgresql"]}
    assert list(steps) == [NEWEST]
    assert steps[NEWEST] == {"recommended": "14", "current": "12.6.0", "upgrade": True, "tag": hops.POSTGRESQL_14_TAG}
    done = hops.plan_hops(path("4.9.5"), mongodb_version="7.0.15", postgresql_version=hops.POSTGRESQL_14_TAG,
                          terraform_version="4.10.0", upgrade_postgresql=True)
    assert done["warnings"] == [] and done["hops"][-1]["postgresql"]["upgrade"] is False, "a PostgreSQL 14 is not moved"


def test_the_real_kubernetes_ranges_refuse_the_path_before_its_first_hop():
    """What upgrade.yml's preflight stops on (server_version_info's problems): no Kubernetes version is inside every
    range of 4.6 -> the newest, so on the lab's 1.27 the first hop already cannot start."""
    plan = plan_upgrade("4.6.6", NEWEST, catalog=Catalog())
    problems = plan.kubernetes_problems("1.27.3")
    assert len(problems) == 1
    assert "Kubernetes 1.27 is outside 1.31-1.31" in problems[0] and "4.6.6 -> 4.7.15 cannot start" in problems[0]
    widened = plan_upgrade("4.6.6", NEWEST, catalog=Catalog(kubernetes_overrides={
        "4.7": "1.27-1.33", "4.8": "1.27-1.35", "4.9": "1.27-1.35", "4.10": "1.27-1.35"}))
    assert widened.kubernetes_problems("1.27.3") == []


@pytest.mark.parametrize("version,fcv,target,expected", [
    ("3.6.22-debian-9-r38", "3.6", "4.4", [("4.0", True), ("4.2", True), ("4.4", True)]),
    ("4.2.21-debian-10-r8", "4.0", "4.4", [("4.2", False), ("4.4", True)]),  # stopped between image and FCV
    ("4.4.15-debian-10-r8", "4.4", "7.0", [("5.0", True), ("6.0", True), ("7.0", True)]),
    ("7.0.15-debian-12-r2", "7.0", "7.0", []),
    ("7.0.15-debian-12-r2", "6.0", "7.0", [("7.0", False)]),
])
def test_mongodb_steps_resume_where_a_run_stopped(version, fcv, target, expected):
    steps = hops.mongodb_steps(version, fcv, target)
    assert [(s["version"], s["set_image"]) for s in steps] == expected
    for step in steps:
        assert step["shell"] == ("mongosh" if step["version"] >= "5.0" else "mongo")
        assert step["confirm"] == (step["version"] == "7.0")


def test_mongodb_off_the_chain_is_refused():
    with pytest.raises(hops.HopsError, match="not on the documented upgrade chain"):
        hops.mongodb_steps("3.4.1", "3.4", "4.4")
    with pytest.raises(hops.HopsError):
        hops.minor_of("latest")
