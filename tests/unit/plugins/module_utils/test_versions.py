# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.circleci.server.plugins.module_utils.versions import (
    Catalog,
    KubernetesRange,
    UnknownRelease,
    Version,
    VersionError,
    KUBERNETES,
    MINOR,
    PATCH,
    normalise_version,
    support_report,
)


@pytest.mark.parametrize("text, expected", [
    ("4.2.7", Version(4, 2, 7)),
    ("4.3", Version(4, 3, 0)),
    ("v1.27.16", Version(1, 27, 16)),
    ("v4.3.9", Version(4, 3, 9)),
    (" 4.10.0 ", Version(4, 10, 0)),
])
def test_parse_accepts_the_forms_operators_paste(text, expected):
    assert Version.parse(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("1.27.16-eks-a18cd3a", Version(1, 27, 16)),
    ("v1.29.4-gke.1043002", Version(1, 29, 4)),
    ("v1.28.5+k3s1", Version(1, 28, 5)),
])
def test_kubernetes_versions_keep_their_vendor_suffix_allowed(text, expected):
    assert Version.parse(text, kind=KUBERNETES) == expected


@pytest.mark.parametrize("text", ["", "four", "4", "4.x.1", "latest", None, "1.27.16-eks-a18cd3a",
                                  "circleci-server-4.2.7", "4.03.1"])
def test_parse_rejects_non_versions_with_an_example(text):
    with pytest.raises(VersionError, match="for example"):
        Version.parse(text)


def test_normalise_returns_the_string_the_playbooks_use():
    assert normalise_version("v4.3.9", "target_version") == "4.3.9"
    assert normalise_version("4.3", "minor", form=MINOR) == "4.3"
    with pytest.raises(VersionError, match="minor: set it to a full version"):
        normalise_version("4.3", "target_version", form=PATCH)
    with pytest.raises(VersionError, match="set it to a minor"):
        normalise_version("4.3.9", "minor", form=MINOR)


@given(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
def test_parse_round_trips(major, minor, patch):
    version = Version(major, minor, patch)
    assert Version.parse(str(version)) == version


def test_versions_order_numerically_not_lexically():
    assert Version.parse("4.10.0") > Version.parse("4.9.5")
    assert Version.parse("4.2.10") > Version.parse("4.2.7")


@pytest.mark.parametrize("server, kube, supported", [
    ("4.2.7", "1.27.3", True),
    ("4.2.7", "1.29.0", False),
    ("4.3.9", "1.26.0", True),
    ("4.3.9", "1.29.9", True),
    ("4.3.9", "1.25.9", False),
    ("4.3.9", "1.30.0", False),
    ("4.7.15", "1.31.2", True),
    ("4.10.0", "1.33.0", True),
    ("4.10.0", "1.32.0", False),
])
def test_kubernetes_support_follows_the_documented_ranges(server, kube, supported):
    report = support_report(server, kube)
    assert report["kubernetes_supported"] is supported
    assert bool(report["problems"]) is (not supported)


def test_broken_patch_is_reported_with_what_to_use_instead():
    report = support_report("4.7.7")
    assert report["broken"] is True
    assert "4.7.15" in report["problems"][0]
    assert support_report("4.7.8")["broken"] is False


def test_last_patch_is_known_per_minor():
    assert support_report("4.2.7")["is_last_patch"] is True
    assert support_report("4.2.5")["is_last_patch"] is False


@pytest.mark.parametrize("version, hint", [("5.0.0", "known minors"), ("4.3.10", "newer than the last")])
def test_unknown_versions_say_to_upgrade_the_collection(version, hint):
    with pytest.raises(UnknownRelease, match=hint) as exc:
        support_report(version)
    assert "circleci.server collection" in str(exc.value)


def test_overrides_replace_one_minor_range_only():
    catalog = Catalog(kubernetes_overrides={"4.3": "1.26-1.30"})
    assert support_report("4.3.9", "1.30.1", catalog)["kubernetes_supported"] is True
    assert support_report("4.2.7", "1.30.1", catalog)["kubernetes_supported"] is False
    with pytest.raises(UnknownRelease):
        Catalog(kubernetes_overrides={"9.9": "1.1-1.2"})


def test_ranges_parse_and_intersect():
    low = KubernetesRange.parse("1.22-1.28")
    high = KubernetesRange.parse("1.26-1.29")
    assert str(low.intersect(high)) == "1.26-1.28"
    assert KubernetesRange.parse("1.22-1.23").intersect(KubernetesRange.parse("1.31-1.33")) is None
    with pytest.raises(VersionError):
        KubernetesRange.parse("1.29-1.26")


def test_catalog_minors_are_ordered_and_each_range_is_non_empty():
    minors = [r.minor for r in Catalog().minors]
    assert minors[0] == "4.0" and minors[-1] == "4.10"
    assert len(minors) == 11
