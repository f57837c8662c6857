# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import base64

import pytest
import yaml
from hypothesis import given, strategies as st

from ansible_collections.circleci.server.plugins.module_utils.release_diff import (
    SECRET_MASK,
    ManifestError,
    diff_releases,
    field_changes,
    render_diff_text,
)

NS = "circleci-server"


def deployment(name, image, env=None, replicas=1):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": name, "image": image, "env": env or []}]}}},
    }


def secret(name, **data):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def stream(*objects):
    return "---\n" + "\n---\n".join(yaml.safe_dump(o) for o in objects)


def test_added_removed_and_changed_resources_are_told_apart():
    current = stream(deployment("frontend", "frontend:4.2.7"), deployment("vm-service", "vm-service:4.2.7"))
    target = stream(deployment("frontend", "frontend:4.3.9"), deployment("machine-provisioner", "mp:4.3.9"))
    result = diff_releases(current, target, NS)
    actions = {(r["name"], r["action"]) for r in result["resources"]}
    assert actions == {("frontend", "changed"), ("vm-service", "removed"), ("machine-provisioner", "added")}
    assert result["summary"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 0}
    (frontend,) = [r for r in result["resources"] if r["name"] == "frontend"]
    assert frontend["changes"] == [{"path": "spec.template.spec.containers[frontend].image",
                                    "before": "frontend:4.2.7", "after": "frontend:4.3.9"}]


def test_identical_release_reports_nothing_to_change():
    manifests = stream(deployment("frontend", "frontend:4.2.7"), secret("tink", keyset="{}"))
    result = diff_releases(manifests, manifests, NS)
    assert result["resources"] == []
    assert result["summary"]["unchanged"] == 2


def test_server_set_metadata_and_status_are_not_changes():
    live = deployment("frontend", "frontend:4.2.7")
    live["metadata"].update(resourceVersion="42", uid="u-1", creationTimestamp="2026-01-01T00:00:00Z")
    live["status"] = {"readyReplicas": 1}
    assert diff_releases(stream(live), stream(deployment("frontend", "frontend:4.2.7")), NS)["resources"] == []


def test_reordered_named_lists_are_not_changes_but_a_changed_env_value_is():
    env_a = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    env_b = [{"name": "B", "value": "2"}, {"name": "A", "value": "3"}]
    changes = field_changes(deployment("x", "i", env_a), deployment("x", "i", env_b))
    assert changes == [{"path": "spec.template.spec.containers[x].env[A].value", "before": "1", "after": "3"}]


def test_secret_values_never_appear_in_the_result_or_the_text():
    current = stream(secret("circleci-secrets", apiToken="old-token-value-123", keep="same"))
    target = stream(secret("circleci-secrets", apiToken="new-token-value-456", keep="same", added="brand-new-secret"))
    result = diff_releases(current, target, NS)
    text = render_diff_text(result) + repr(result)
    for clear in ("old-token-value-123", "new-token-value-456", "brand-new-secret"):
        assert clear not in text
        assert base64.b64encode(clear.encode()).decode() not in text
    changes = {c["path"]: c for c in result["resources"][0]["changes"]}
    assert changes["data.apiToken"] == {"path": "data.apiToken", "before": SECRET_MASK, "after": SECRET_MASK}
    assert changes["data.added"]["before"] is None and changes["data.added"]["after"] == SECRET_MASK


def test_string_data_in_the_chart_compares_equal_to_stored_data():
    rendered = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}
    assert diff_releases(stream(secret("s", k="v")), stream(rendered), NS)["resources"] == []


def test_namespace_defaults_to_the_release_namespace():
    explicit = deployment("frontend", "f:1")
    explicit["metadata"]["namespace"] = NS
    assert diff_releases(stream(explicit), stream(deployment("frontend", "f:1")), NS)["resources"] == []


def test_text_summarises_every_action():
    result = diff_releases(stream(deployment("a", "1"), deployment("b", "1")),
                           stream(deployment("a", "2"), deployment("c", "1")), NS)
    text = render_diff_text(result)
    assert "~ Deployment circleci-server/a" in text
    assert "+ Deployment circleci-server/c (new)" in text
    assert "- Deployment circleci-server/b (removed)" in text
    assert text.strip().endswith("1 to add, 1 to change, 1 to remove, 0 unchanged")


@pytest.mark.parametrize("bad", ["key: [unclosed", "- just\n- a list\n", "plain string"])
def test_non_manifests_are_refused(bad):
    with pytest.raises(ManifestError):
        diff_releases(bad, "", NS)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=6),
       st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=6))
def test_field_changes_are_exactly_the_differing_keys(before, after):
    changes = field_changes(before, after)
    assert {c["path"] for c in changes} == {k for k in set(before) | set(after) if before.get(k, object()) != after.get(k, object())}
    assert field_changes(after, after) == []
