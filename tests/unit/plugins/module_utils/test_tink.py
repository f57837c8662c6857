# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Vault -> Tink migration signals."""
from __future__ import annotations

import json

import pytest

from ansible_collections.circleci.server.plugins.module_utils.k8s import HelmReleaseError
from ansible_collections.circleci.server.plugins.module_utils.tink import (
    evaluate_tink,
    inspect_keyset,
    read_tink_facts,
)
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import (
    FakeReader,
    helm_release_secret,
    obj,
    secret,
)

NS = "circleci-server"
KEYSET = json.dumps({"primaryKeyId": 42, "key": [{"keyData": {"value": "S3CR3T-KEYSET-MATERIAL"}}]})


def world(values, extra=()):
    return FakeReader([helm_release_secret(NS, "circleci-server", 3, "4.2.7", values)] + list(extra))


def migrated_world(**overrides):
    values = {"tink": {"enabled": True}, "vault": {"internal": False}}
    values.update(overrides)
    return world(values, [secret(NS, "tink", {"keyset": KEYSET})])


def status(reader, import_log=None):
    return evaluate_tink(read_tink_facts(reader, NS, "circleci-server"), import_log)


def by_name(result):
    return {s["name"]: s for s in result["signals"]}


def test_a_migrated_install_passes_every_signal():
    result = status(migrated_world())
    assert result["migrated"] is True and result["blocking"] == []
    assert [s["name"] for s in result["signals"]] == [
        "tink_enabled", "keyset_present", "vault_not_internal", "no_vault_workload", "vault_pvc_absent"]
    assert all(s["ok"] for s in result["signals"])
    assert "1 key(s)" in by_name(result)["keyset_present"]["evidence"]


def test_the_keyset_never_appears_in_the_result():
    for reader in (migrated_world(), world({"tink": {"enabled": True, "keyset": KEYSET}, "vault": {"internal": False}})):
        facts = read_tink_facts(reader, NS, "circleci-server")
        text = json.dumps(evaluate_tink(facts, "0: Error while importing")) + json.dumps(facts)
        assert "S3CR3T" not in text and "primaryKeyId" not in text


def test_keyset_in_values_is_enough():
    result = status(world({"tink": {"enabled": True, "keyset": KEYSET}, "vault": {"internal": False}}))
    assert result["migrated"] is True
    assert "tink.keyset is set" in by_name(result)["keyset_present"]["evidence"]


def test_an_unmigrated_install_lists_every_blocking_signal_with_what_to_do():
    reader = world({}, [obj("StatefulSet", NS, "vault"),
                        obj("Pod", NS, "vault-0", labels={"app": "vault"}),
                        obj("PersistentVolumeClaim", NS, "data-vault-0")])
    result = status(reader)
    assert result["migrated"] is False
    signals = by_name(result)
    assert not signals["tink_enabled"]["ok"] and "unset" in signals["tink_enabled"]["evidence"]
    assert not signals["keyset_present"]["ok"]
    assert not signals["vault_not_internal"]["ok"] and "default is true" in signals["vault_not_internal"]["evidence"]
    assert "StatefulSet vault" in signals["no_vault_workload"]["evidence"]
    assert "pod vault-0" in signals["no_vault_workload"]["evidence"]
    assert len(result["blocking"]) == 4
    assert all("To fix it:" in sentence for sentence in result["blocking"])


def test_a_leftover_vault_pvc_is_reported_but_does_not_block():
    reader = migrated_world()
    reader.objects.append(obj("PersistentVolumeClaim", NS, "data-vault-0"))
    result = status(reader)
    pvc = by_name(result)["vault_pvc_absent"]
    assert result["migrated"] is True
    assert pvc["ok"] is False and pvc["blocking"] is False and "remains" in pvc["evidence"]


@pytest.mark.parametrize("enabled, ok", [(True, True), ("true", True), (False, False), ("false", False), (None, False)])
def test_tink_enabled_accepts_yaml_booleans(enabled, ok):
    reader = migrated_world(tink={"enabled": enabled})
    assert by_name(status(reader))["tink_enabled"]["ok"] is ok


@pytest.mark.parametrize("raw, problem", [
    (b"not json at all", "not valid JSON"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (b"  ", "empty"),
    (None, "not valid base64"),
])
def test_bad_keysets_are_explained(raw, problem):
    facts = inspect_keyset(raw)
    assert facts["json"] is False and problem in facts["problem"]


def test_a_secret_with_a_bad_keyset_blocks():
    reader = world({"tink": {"enabled": True}, "vault": {"internal": False}},
                   [secret(NS, "tink", {"keyset": "tinkey-output-base64-encoded-twice"})])
    result = status(reader)
    assert result["migrated"] is False
    assert "not valid JSON" in by_name(result)["keyset_present"]["evidence"]


def test_a_secret_without_the_keyset_key_blocks():
    reader = world({"tink": {"enabled": True}, "vault": {"internal": False}}, [secret(NS, "tink", {"other": "x"})])
    assert "has no key keyset" in by_name(status(reader))["keyset_present"]["evidence"]


@pytest.mark.parametrize("log, ok, words", [
    ("...\n12: Success imported contexts\n0: Error while importing\n", True, "12 contexts imported"),
    ("12: Success imported contexts\n3: Error while importing\n", False, "3: Error while importing"),
    ("PUT ... 200\n", False, "did not finish"),
])
def test_the_import_log_is_required_when_given(log, ok, words):
    result = status(migrated_world(), log)
    signal = by_name(result)["import_log"]
    assert signal["ok"] is ok and words in signal["evidence"]
    assert result["migrated"] is ok


def test_a_missing_release_raises_with_what_to_check():
    with pytest.raises(HelmReleaseError, match="helm list -n circleci-server"):
        read_tink_facts(FakeReader(), NS, "circleci-server")


def test_the_deployed_revision_is_read_not_a_failed_newer_one():
    reader = migrated_world()
    reader.objects.append(helm_release_secret(NS, "circleci-server", 4, "4.3.9", {}, status="failed"))
    facts = read_tink_facts(reader, NS, "circleci-server")
    assert facts["revision"] == 3 and facts["chart_version"] == "4.2.7"
    assert evaluate_tink(facts)["migrated"] is True
