# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade-path planner over the whole release catalog."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, strategies as st

from ansible_collections.circleci.server.plugins.module_utils.versions import (
    Catalog,
    Version,
    plan_upgrade,
)

CATALOG = Catalog()
KNOWN = [Version(int(r.minor.split(".")[0]), int(r.minor.split(".")[1]), patch)
         for r in CATALOG.minors for patch in range(r.last_patch.patch + 1)]


def test_every_pair_of_known_versions_gives_a_path_or_a_reason():
    for current, target in itertools.product(KNOWN, KNOWN):
        plan = plan_upgrade(str(current), str(target))
        assert plan.ok != bool(plan.refused), (current, target)
        if not plan.ok:
            assert all(reason.endswith(".") for reason in plan.refused)
            assert target < current or CATALOG.is_broken(target), (current, target, plan.refused)
            continue
        assert not CATALOG.is_broken(target) and target >= current
        check_path(current, target, plan)


def check_path(current, target, plan):
    versions = [Version.parse(v) for v in plan.as_dict()["versions"]]
    if current == target:
        assert versions == []
        return
    assert versions[-1] == target
    position = current
    for hop, landing in zip(plan.hops, versions):
        assert hop.source == position and hop.target == landing and landing > position
        assert not CATALOG.is_broken(landing)
        if landing.minor_key != position.minor_key:
            # A minor hop leaves from the last patch and goes to the very next minor.
            assert position == CATALOG.release(position).last_patch
            minors = [r.minor for r in CATALOG.minors]
            assert minors.index(landing.minor_key) == minors.index(position.minor_key) + 1
            if landing != target:
                assert landing == CATALOG.release(landing).last_patch
        overlap = CATALOG.release(position).kubernetes.intersect(CATALOG.release(landing).kubernetes)
        assert hop.kubernetes == overlap
        position = landing


@pytest.mark.parametrize("current, target, versions", [
    ("4.2.3", "4.3.9", ["4.2.7", "4.3.9"]),
    ("4.2.7", "4.3.9", ["4.3.9"]),
    ("4.2.7", "4.3.2", ["4.3.2"]),
    ("4.2.5", "4.2.7", ["4.2.7"]),
    ("4.6.6", "4.8.12", ["4.7.15", "4.8.12"]),
    ("4.7.7", "4.7.15", ["4.7.15"]),
    ("4.3.9", "4.3.9", []),
    ("v4.2.7", "v4.3.9", ["4.3.9"]),
])
def test_paths_go_through_the_last_patch_of_each_minor(current, target, versions):
    plan = plan_upgrade(current, target)
    assert plan.ok
    assert plan.as_dict()["versions"] == versions


def test_the_kubernetes_range_of_each_hop_is_the_overlap():
    path = plan_upgrade("4.2.3", "4.3.9").as_dict()["path"]
    assert [hop["kubernetes_range"] for hop in path] == [{"min": "1.22", "max": "1.28"}, {"min": "1.26", "max": "1.28"}]
    assert [hop["kind"] for hop in path] == ["patch", "minor"]
    assert plan_upgrade("4.6.6", "4.7.15").as_dict()["path"][0]["kubernetes_range"] == {"min": "1.31", "max": "1.31"}


@pytest.mark.parametrize("current, target, words", [
    ("4.3.9", "4.7.7", ["known-broken", "4.7.15"]),
    ("4.3.9", "4.2.7", ["older than the installed", "restore the Velero backup"]),
    ("4.3.9", "4.11.0", ["target version", "Upgrade the circleci.server collection"]),
    ("4.3.10", "4.4.0", ["installed version", "newer than the last 4.3 patch"]),
    ("4.3.9", "latest", ["not a version"]),
])
def test_refusals_say_what_to_do(current, target, words):
    plan = plan_upgrade(current, target)
    assert not plan.ok and plan.hops == ()
    for word in words:
        assert word in " ".join(plan.refused)


def test_validated_skip_to_4_7_only_where_one_kubernetes_fits_both():
    assert plan_upgrade("4.4.2", "4.7.15", allow_validated_skips=True).as_dict()["versions"] == ["4.4.7", "4.7.15"]
    assert plan_upgrade("4.4.2", "4.7.15").as_dict()["versions"] == ["4.4.7", "4.5.5", "4.6.6", "4.7.15"]
    # 4.3 (1.26-1.29) and 4.7 (1.31-1.33) share no Kubernetes version: the skip is not taken.
    assert plan_upgrade("4.3.9", "4.7.15", allow_validated_skips=True).as_dict()["versions"] == [
        "4.4.7", "4.5.5", "4.6.6", "4.7.15"]
    assert plan_upgrade("4.7.15", "4.8.12", allow_validated_skips=True).as_dict()["versions"] == ["4.8.12"]


def test_requires_tink_when_a_hop_lands_on_4_3_or_later():
    assert plan_upgrade("4.2.3", "4.3.9").crosses_tink_boundary
    assert not plan_upgrade("4.2.3", "4.2.7").crosses_tink_boundary
    assert not plan_upgrade("4.3.9", "4.3.9").crosses_tink_boundary
    assert plan_upgrade("4.5.1", "4.6.6").as_dict()["requires_tink"] is True


def test_kubernetes_problems_name_the_first_hop_that_does_not_fit():
    plan = plan_upgrade("4.2.7", "4.3.9")
    assert plan.kubernetes_problems("v1.27.16-eks-a18cd3a") == []
    problems = plan.kubernetes_problems("1.30.2")
    assert len(problems) == 1 and "1.26-1.28" in problems[0] and "cannot start" in problems[0]
    later = plan_upgrade("4.5.1", "4.8.12").kubernetes_problems("1.31.4")
    assert len(later) == 1 and "upgrade to 4.7.15 in this run" in later[0] and "1.33" in later[0]
    assert plan_upgrade("4.3.9", "4.3.9").kubernetes_problems("1.40.0") == []


def test_overrides_change_the_hop_ranges():
    catalog = Catalog(kubernetes_overrides={"4.3": "1.26-1.30", "4.2": "1.22-1.30"})
    plan = plan_upgrade("4.2.7", "4.3.9", catalog)
    assert plan.kubernetes_problems("1.30.1") == []


@given(st.sampled_from(KNOWN), st.sampled_from(KNOWN), st.booleans())
def test_plans_never_land_on_a_broken_release_or_go_backwards(current, target, skips):
    plan = plan_upgrade(str(current), str(target), allow_validated_skips=skips)
    landings = [hop.target for hop in plan.hops]
    assert landings == sorted(landings)
    assert all(not CATALOG.is_broken(v) for v in landings)
    assert plan.ok or plan.refused


def test_gke_must_not_land_on_4_5():
    plan = plan_upgrade("4.4.7", "4.6.6")
    assert plan.platform_problems("v1.29.4-eks-1") == []
    problems = plan.platform_problems("v1.29.4-gke.1043002")
    assert len(problems) == 1 and "4.5.5" in problems[0] and "allow_validated_skips" in problems[0]
    skipping = plan_upgrade("4.4.7", "4.7.15", allow_validated_skips=True)
    assert skipping.platform_problems("v1.31.1-gke.100") == []
    assert plan_upgrade("4.2.7", "4.3.9").platform_problems("v1.27.3-gke.1") == []
