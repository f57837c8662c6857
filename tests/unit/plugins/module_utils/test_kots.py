# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The 3.x -> 4.0 values transform: the table of section 1.4 row by row, the script's quirks shown fixed.

Defects of kots-exporter.sh (server-scripts.md section 6) and the tests that show them fixed:
* 3 (revision 1 read): tests/unit/plugins/modules/test_kots_export.py::test_cluster_read_takes_the_current_revision...
* 5 (output destroyed, new random MongoDB password each run): test_row_6_a_rerun_reuses..., the module's backup tests;
* 6 (a failed delete only printed a message): test_a_scalar_where_a_mapping_is_needed_fails_with_the_path;
* 7 (secrets in clear): test_fixture_changes_and_manual_actions_show_no_secret, test_property_no_secret_value...,
  the module's 0600 and masked-diff tests;
* 8 (YAML edited as text): test_row_1_* (awk, unescaped interpolation), test_row_9_quirk_fixed_*,
  test_row_15_quirk_fixed_*, test_row_16_*;
* 9 (ec2 tested, aws deleted): test_row_12_quirk_fixed_gcp_install_drops_ec2_not_a_missing_aws_key.
"""
from __future__ import annotations

import base64
import copy
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.circleci.server.plugins.module_utils import kots
from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile
from ansible_collections.circleci.server.plugins.module_utils.values.masking import MASK, is_secret_key

FIXTURE = Path(__file__).resolve().parents[3] / "integration" / "kots_export" / "values-3.x-aws.yaml"
LICENSE = "fixture-4x-license-aaaa"


def fixed_password():
    return "fixture-generated-mongo-pw"


def export(values, **kwargs):
    kwargs.setdefault("password_factory", fixed_password)
    return kots.export_values(values, kwargs.pop("license_key", LICENSE), **kwargs)


def minimal(**extra):
    values = {"domainName": "ci.example.com"}
    values.update(extra)
    return values


def rows(result, row):
    return [change for change in result.changes if change["row"] == row]


def fixture_values():
    return yamlfile.load(FIXTURE.read_text(encoding="utf-8"))[0]


# --- one test per row of the table ----------------------------------------------------------------------------

def test_row_1_domain_name_moves_to_global():
    result = export(minimal(domainName=" ci.example.com "))
    assert result.values["global"]["domainName"] == "ci.example.com"
    assert "domainName" not in result.values
    assert rows(result, "1")[0]["from"] == "domainName"


@pytest.mark.parametrize("domain", ['ci."odd"\\.example.com', "localhost", "ci.example.com;rm -rf /", "-ci.example.com"])
def test_row_1_a_domain_that_is_not_a_dns_name_is_refused(domain):
    # The script interpolated the value into a yq program unescaped; here it becomes DNS records: refused.
    with pytest.raises(kots.KotsExportError, match="domainName is not a DNS name"):
        export(minimal(domainName=domain))


def test_row_1_only_the_top_level_key_counts_not_the_first_line_that_mentions_it():
    # awk took the first line containing 'domainName', wherever it was.
    values = {"aaa": {"legacyDomainName": "wrong.example.com"}, "domainName": "right.example.com"}
    assert export(values).values["global"]["domainName"] == "right.example.com"


def test_row_1_missing_domain_fails_with_advice():
    with pytest.raises(kots.KotsExportError, match="no domainName.*helm get values"):
        export({"kong": {}})


def test_row_2_image_pull_secret_is_added_in_front_and_others_kept():
    result = export(minimal(**{"global": {"imagePullSecrets": [{"name": "mirror"}]}}))
    assert result.values["global"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert export(minimal()).values["global"]["imagePullSecrets"] == [{"name": "regcred"}]
    again = export(result.values)
    assert again.values["global"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


def test_row_3_license_is_the_given_one_and_masked():
    result = export(minimal(license="old-3x-license"), license_key="  new-4x-license\n")
    assert result.values["global"]["license"] == "new-4x-license"
    assert rows(result, "3") == [{"row": "3", "action": "set", "path": "global.license", "after": MASK}]


@pytest.mark.parametrize("license_key", ["", "   ", None])
def test_row_3_empty_license_fails(license_key):
    with pytest.raises(kots.KotsExportError, match="license is empty"):
        kots.export_values(minimal(), license_key)


def test_row_4_kong_annotations_move_to_nginx():
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    result = export(minimal(kong={"annotations": annotations}))
    assert result.values["nginx"]["annotations"] == annotations
    assert "annotations" not in result.values["kong"]


def test_row_4_null_kong_annotations_give_no_nginx_annotations():
    result = export(minimal(kong={"annotations": None}))
    assert "nginx" not in result.values


@pytest.mark.parametrize("enabled, expected", [(True, True), ("true", True), (False, None), (None, None)])
def test_row_5_aws_acm(enabled, expected):
    result = export(minimal(kong={"aws_acm": {"enabled": enabled}}))
    assert (result.values.get("nginx") or {}).get("aws_acm", {}).get("enabled") is expected
    if enabled is not None:
        assert result.values["kong"]["aws_acm"] == {"enabled": enabled}  # kept, as the script did
    assert result.facts["nginx_aws_acm"] is bool(expected)


def test_row_6_mongodb_password_generated_when_absent_reused_when_present():
    result = kots.export_values(minimal(), LICENSE)
    password = result.values["mongodb"]["auth"]["password"]
    assert len(password) == 16 and set(password) <= set(kots.MONGODB_PASSWORD_ALPHABET)
    assert rows(result, "6") == [{"row": "6", "action": "generated", "path": "mongodb.auth.password", "after": MASK}]
    assert result.facts["generated"] == ["mongodb.auth.password"]
    kept = export(minimal(mongodb={"auth": {"password": "fixture-kept-pw"}}))
    assert kept.values["mongodb"]["auth"]["password"] == "fixture-kept-pw" and not rows(kept, "6")


def test_row_6_a_rerun_reuses_the_password_of_the_previous_file():
    first = kots.export_values(minimal(), LICENSE)
    second = kots.export_values(minimal(), LICENSE, previous=first.values)
    assert second.values == first.values
    assert rows(second, "6")[0]["action"] == "reused"


@pytest.mark.parametrize("registry", ["cciserver.azurecr.io", "mirror.example.com:5000"])
def test_rows_7_8_container_registry_and_org(registry):
    result = export(minimal(**{"global": {"container": {"org": "circleci"}}}), registry=registry)
    assert result.values["global"]["container"] == {"registry": registry, "org": ""}


def test_row_9_telegraf_config_is_decoded():
    config = '[[outputs.file]]\n  files = ["stdout"]\n'
    encoded = base64.b64encode(config.encode()).decode()
    result = export(minimal(telegraf={"config": {"custom_config_file": encoded}}))
    assert result.values["telegraf"]["config"]["custom_config_file"] == config
    assert rows(result, "9")[0]["after"] == MASK  # a telegraf config can hold API keys


def test_row_9_quirk_fixed_a_missing_telegraf_value_stays_missing():
    # The script decoded the text 'null' into the bytes 0x9e 0xe9 0x65.
    for telegraf in ({"config": {"custom_config_file": None}}, {"config": {}}, {"replicas": 1}):
        result = export(minimal(telegraf=telegraf))
        assert "custom_config_file" not in result.values["telegraf"].get("config", {})
        assert not rows(result, "9")


def test_row_9_plain_text_is_not_decoded_again():
    config = "[agent]\n  interval = \"10s\"\n"
    result = export(minimal(telegraf={"config": {"custom_config_file": config}}))
    assert result.values["telegraf"]["config"]["custom_config_file"] == config


def test_row_10a_internal_postgres():
    values = minimal(postgresql={"internal": True, "postgresqlPassword": "fixture-pg-pw", "postgresqlUsername": "postgres"})
    result = export(values)
    assert result.values["postgresql"] == {
        "internal": True, "auth": {"postgresPassword": "fixture-pg-pw", "username": "", "existingSecret": ""}}
    assert result.facts["postgresql_internal"] is True
    assert all(change.get("after") in (MASK, "") for change in rows(result, "10a"))


def test_row_10b_external_postgres_keeps_host_and_port():
    values = minimal(postgresql={"internal": False, "postgresqlHost": "db.example.com", "postgresqlPort": 5433,
                                 "postgresqlPassword": "fixture-pg-pw", "postgresqlUsername": "circle"})
    result = export(values)
    assert result.values["postgresql"] == {
        "internal": False, "postgresqlHost": "db.example.com", "postgresqlPort": 5433,
        "auth": {"password": "fixture-pg-pw", "username": "circle", "existingSecret": ""}}
    assert result.facts["postgresql_internal"] is False


def test_row_10_internal_postgres_without_password_warns():
    result = export(minimal(postgresql={"internal": True}))
    assert any("postgresPassword is empty" in warning for warning in result.warnings)


def test_row_10_unset_internal_is_taken_as_internal_with_a_warning():
    result = export(minimal(postgresql={"postgresqlPassword": "fixture-pg-pw"}))
    assert result.facts["postgresql_internal"] is True
    assert result.values["postgresql"]["auth"]["postgresPassword"] == "fixture-pg-pw"
    assert any("postgresql.internal is not set" in warning for warning in result.warnings)


AUTOSCALER = {"aws": {"enabled": False, "region": "us-east-1"}, "gcp": {"enabled": False, "project_id": "p"}}


@pytest.mark.parametrize("enabled, aws, gcp, kept", [
    (False, True, False, set()),            # 11: autoscaler off -> both provider blocks deleted
    (True, True, False, {"aws"}),            # 11b: AWS
    (True, False, True, {"gcp"}),            # 11c: GCP
    ("true", "true", False, {"aws"}),        # the script compared printed text
    (True, False, False, {"aws", "gcp"}),    # neither enabled: both kept, with a warning
])
def test_row_11_autoscaler_prune(enabled, aws, gcp, kept):
    scaler = copy.deepcopy(AUTOSCALER)
    scaler["enabled"] = enabled
    scaler["aws"]["enabled"], scaler["gcp"]["enabled"] = aws, gcp
    result = export(minimal(nomad={"auto_scaler": scaler}))
    assert set(result.values["nomad"]["auto_scaler"]) - {"enabled"} == kept
    assert bool(result.warnings and "both blocks were kept" in " ".join(result.warnings)) == (kept == {"aws", "gcp"})


def test_row_12_ec2_install_drops_gcp():
    providers = {"ec2": {"enabled": True, "region": "us-east-1"}, "gcp": {"enabled": False, "zone": "z"}}
    result = export(minimal(vm_service={"providers": providers}))
    assert list(result.values["vm_service"]["providers"]) == ["ec2"]


def test_row_12_quirk_fixed_gcp_install_drops_ec2_not_a_missing_aws_key():
    # The script tested 'ec2' but deleted 'aws', so a GCP install kept its ec2 block.
    providers = {"ec2": {"enabled": False, "region": "us-east-1"}, "gcp": {"enabled": True, "zone": "z"}}
    result = export(minimal(vm_service={"providers": providers}))
    assert list(result.values["vm_service"]["providers"]) == ["gcp"]
    assert rows(result, "12")[0]["path"] == "vm_service.providers.ec2"


@pytest.mark.parametrize("storage, kept, fact", [
    ({"s3": {"enabled": True, "endpoint": "https://s3.us-east-1.amazonaws.com"}, "gcs": {"enabled": False}}, "s3", "s3"),
    ({"s3": {"enabled": True, "endpoint": "https://minio.example.com:9000", "accessKey": "fixture-minio-ak",
             "secretKey": "fixture-minio-sk"}, "gcs": {"enabled": False, "service_account": ""}}, "s3", "s3"),
    ({"s3": {"enabled": False}, "gcs": {"enabled": True, "service_account": {"type": "service_account"}}}, "gcs", "gcs"),
], ids=["aws-s3", "s3-compatible-minio", "gcs"])
def test_row_13_object_storage(storage, kept, fact):
    result = export(minimal(object_storage=dict(storage, bucketName="bucket")))
    assert set(result.values["object_storage"]) == {"bucketName", kept}
    assert result.values["object_storage"][kept] == storage[kept]
    assert result.facts["object_storage"] == fact
    assert not any("object_storage" in warning for warning in result.warnings)


def test_row_13_no_storage_enabled_warns():
    result = export(minimal(object_storage={"s3": {"enabled": False}, "gcs": {"enabled": False}}))
    assert result.facts["object_storage"] is None
    assert any("object_storage" in warning for warning in result.warnings)


def test_row_14_3x_keys_are_deleted():
    values = minimal(published="2023-01-01", license="fixture-old-license", kong={"annotations": {"a": "b"}, "replicas": 1},
                     postgresql={"internal": True, "postgresqlUsername": "u", "postgresqlPassword": "fixture-p"},
                     nomad={"server": {"rpc": {"advertise": "nomad.example.com", "mTLS": {"enabled": False}}}})
    result = export(values)
    for path in kots.DELETED_KEYS:
        parent = result.values
        for key in path[:-1]:
            parent = parent.get(key, {})
        assert path[-1] not in parent, path
    assert result.values["kong"] == {"replicas": 1}
    assert result.values["nomad"]["server"]["rpc"] == {"mTLS": {"enabled": False}}
    deleted = {change["path"]: change["before"] for change in rows(result, "14")}
    assert deleted["license"] == MASK and deleted["postgresql.postgresqlPassword"] == MASK


def test_row_15_quirk_fixed_nulls_removed_structurally_not_from_strings():
    scrape = "- job_name: telegraf\n  params: null\n  static_configs:\n  - targets: ['telegraf:9273']\n"
    values = minimal(prometheus={"extraScrapeConfigs": scrape, "server": None},
                     proxy={"http": {"auth": {"username": None, "enabled": False}}},
                     vm_scaler={"prescaled": [{"type": "l1.medium", "cron": None}, None]})
    result = export(values)
    assert result.values["prometheus"] == {"extraScrapeConfigs": scrape}
    assert result.values["proxy"] == {"http": {"auth": {"enabled": False}}}
    assert result.values["vm_scaler"]["prescaled"] == [{"type": "l1.medium"}, None]
    assert {c["path"] for c in rows(result, "15")} == {
        "prometheus.server", "proxy.http.auth.username", "vm_scaler.prescaled.0.cron"}


def test_row_16_empty_service_account_removed_anywhere():
    values = minimal(object_storage={"gcs": {"enabled": True, "service_account": ""}},
                     nomad={"auto_scaler": {"gcp": {"service_account": ""}}},
                     other={"service_account": "named-sa", "note": 'service_account: ""'})
    result = export(values)
    assert "service_account" not in result.values["object_storage"]["gcs"]
    assert result.values["other"] == {"service_account": "named-sa", "note": 'service_account: ""'}
    assert len(rows(result, "16")) == 2


def test_row_17_minio_is_deleted():
    result = export(minimal(minio={"enabled": True, "accessKey": "fixture-ak"}))
    assert "minio" not in result.values
    assert rows(result, "17")[0]["before"] == {"enabled": True, "accessKey": MASK}


def test_helm_get_values_header_without_o_yaml_is_dropped():
    values = yamlfile.load("USER-SUPPLIED VALUES:\ndomainName: ci.example.com\n")[0]
    assert "USER-SUPPLIED VALUES" not in export(values).values


def test_computed_values_are_refused():
    values = yamlfile.load("COMPUTED VALUES:\ndomainName: ci.example.com\nfrontend:\n  image: {tag: 3.4.8}\n")[0]
    with pytest.raises(kots.KotsExportError, match="without --all"):
        export(values)


def test_a_scalar_where_a_mapping_is_needed_fails_with_the_path():
    with pytest.raises(kots.KotsExportError, match="global is a str"):
        export(minimal(**{"global": "oops"}))


def test_the_input_is_never_modified():
    values = fixture_values()
    before = json.dumps(yamlfile.to_plain(values), sort_keys=True)
    export(values)
    assert json.dumps(yamlfile.to_plain(values), sort_keys=True) == before


# --- the realistic fixture --------------------------------------------------------------------------------

def test_fixture_aws_internal_postgres_export():
    result = export(fixture_values())
    values = yamlfile.to_plain(result.values)
    assert list(values)[0] == "global"
    assert values["global"] == {
        "domainName": "circleci.example.com", "imagePullSecrets": [{"name": "regcred"}], "license": LICENSE,
        "container": {"registry": "cciserver.azurecr.io", "org": ""}}
    assert values["nginx"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"] == "nlb"
    assert values["postgresql"]["auth"]["postgresPassword"] == "fixture-postgres-password-2e9f"
    assert set(values["nomad"]["auto_scaler"]) == {"aws", "enabled", "scaling"}
    assert set(values["vm_service"]["providers"]) == {"ec2"}
    assert set(values["object_storage"]) == {"bucketName", "expireAfter", "s3"}
    assert values["telegraf"]["config"]["custom_config_file"].startswith("[[outputs.datadog]]\n")
    for gone in ("domainName", "license", "published", "minio"):
        assert gone not in values
    # Everything the table does not touch passes through, secrets included.
    assert values["keyset"] == {"encryption": "fixture-keyset-encryption-77aa", "signing": "fixture-keyset-signing-88bb"}
    assert values["nomad"]["server"]["rpc"]["mTLS"]["enabled"] is True
    assert result.facts["nomad_server_endpoint"] == "circleci.example.com:4647"


def secret_values(tree, path=()):
    """Every non-empty string under a secret-looking key, and the decoded telegraf config's lines."""
    found = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if is_secret_key(path + (key,)):
                for leaf in _leaves(value):
                    if isinstance(leaf, str) and len(leaf) >= 4:
                        found.add(leaf)
            else:
                found |= secret_values(value, path + (key,))
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            found |= secret_values(item, path + (index,))
    return found


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def test_fixture_changes_and_manual_actions_show_no_secret():
    values = fixture_values()
    result = export(values)
    shown = json.dumps(result.changes, default=str) + json.dumps(kots.manual_actions(result.facts))
    secrets = secret_values(yamlfile.to_plain(values)) | {LICENSE, fixed_password(), "fixture-telegraf-datadog-key-0d5e"}
    assert "fixture-telegraf" not in shown
    secrets = {secret for secret in secrets if "fixture" in secret}  # the fixture's secrets all hold the word
    assert len(secrets) > 15
    for secret in secrets:
        assert secret not in shown, secret
    masked = json.dumps(yamlfile.to_plain(kots.mask_values(result.values)))
    for secret in secrets:
        assert secret not in masked, secret


def test_manual_actions_name_dns_nomad_endpoint_and_mtls():
    result = export(fixture_values())
    actions = kots.manual_actions(result.facts, namespace="circleci-server", dest="/srv/values.yaml")
    assert any("app.circleci.example.com" in a and "kubectl -n circleci-server get svc circleci-proxy" in a for a in actions)
    assert any('server_endpoint = "circleci.example.com:4647"' in a for a in actions)
    assert any("nomad.server.rpc.mTLS" in a and "/srv/values.yaml" in a and "must be replaced" in a for a in actions)
    acm = export(minimal(kong={"aws_acm": {"enabled": True}}))
    assert "circleci-proxy-acm" in kots.manual_actions(acm.facts)[0]


def test_fixture_export_is_idempotent_and_dumps_the_same_bytes():
    first = export(fixture_values())
    text = yamlfile.dump(kots.literal_blocks(first.values))
    reloaded = yamlfile.load(text)[0]
    second = export(reloaded, previous=reloaded)
    assert yamlfile.dump(kots.literal_blocks(second.values)) == text
    assert "custom_config_file: |" in text


# --- properties ---------------------------------------------------------------------------------------------

KEYS = st.sampled_from(["enabled", "replicas", "auth", "password", "annotations", "service_account", "config",
                        "name", "aws", "gcp", "ec2", "s3", "gcs", "internal", "image", "tag", "x.y/z", "token"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "true", "false", "v"]),
                    st.text(min_size=1, max_size=12))
TREES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=4)), max_leaves=12)
SECTIONS = st.sampled_from(["kong", "nginx", "mongodb", "postgresql", "nomad", "vm_service", "object_storage",
                            "telegraf", "global", "frontend", "github", "minio"])
VALUES = st.dictionaries(SECTIONS, st.dictionaries(KEYS, TREES, max_size=4), max_size=6).map(
    lambda tree: dict(tree, domainName="ci.example.com"))


def leaf_paths(tree, path=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaf_paths(value, path + (key,))
    else:
        yield path, tree


def removed_by_table(path, value):
    """Whether the table may remove this leaf: rows 11-17 and the moves of rows 1, 4 and 10."""
    if value is None:
        return True  # row 15
    if path and path[-1] == "service_account" and value == "":
        return True  # row 16
    prefixes = list(kots.DELETED_KEYS) + [("minio",)]
    prefixes += [("nomad", "auto_scaler", name) for name in ("aws", "gcp")]
    prefixes += [("vm_service", "providers", name) for name in ("ec2", "gcp")]
    prefixes += [("object_storage", name) for name in ("s3", "gcs")]
    prefixes += [("global",), ("nginx", "annotations"), ("postgresql", "auth"), ("mongodb", "auth", "password"),
                 ("telegraf", "config", "custom_config_file"), ("nginx", "aws_acm", "enabled")]
    return any(path[:len(prefix)] == prefix for prefix in prefixes)


def plain(result):
    return yamlfile.to_plain(result.values)


@settings(max_examples=150, deadline=None)
@given(VALUES)
def test_property_never_drops_a_user_key_the_table_does_not_remove(values):
    try:
        result = export(values)
    except kots.KotsExportError:
        return  # a scalar where the table needs a mapping: refused, nothing dropped
    out = plain(result)
    out_paths = {path for path, _value in leaf_paths(out)}
    for path, value in leaf_paths(values):
        if removed_by_table(path, value):
            continue
        assert any(out_path[:len(path)] == path for out_path in out_paths), path


@settings(max_examples=150, deadline=None)
@given(VALUES)
def test_property_export_is_idempotent_on_its_output(values):
    try:
        first = export(values)
    except kots.KotsExportError:
        return
    second = export(first.values, previous=first.values)
    assert plain(second) == plain(first)


@settings(max_examples=150, deadline=None)
@given(VALUES, st.text(alphabet="abcdefghijklmnop0123456789-", min_size=12, max_size=20))
def test_property_no_secret_value_in_the_changes(values, marker):
    # Put a distinctive secret under every secret-looking key, then look for it in what is returned.
    def plant(tree, path=()):
        if isinstance(tree, dict):
            return {k: ("fixture-%s" % marker if is_secret_key(path + (k,)) and not isinstance(v, (dict, list))
                        else plant(v, path + (k,))) for k, v in tree.items()}
        if isinstance(tree, list):
            return [plant(item, path + (i,)) for i, item in enumerate(tree)]
        return tree
    planted = plant(values)
    try:
        result = export(planted, license_key="fixture-%s" % marker)
    except kots.KotsExportError:
        return
    secret = "fixture-%s" % marker
    shown = json.dumps(result.changes, default=str) + json.dumps(result.warnings)
    assert secret not in shown
    assert secret not in json.dumps(yamlfile.to_plain(kots.mask_values(result.values)), default=str)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_property_literal_blocks_round_trip(text):
    # Multi-line strings only: single-line ones are not touched (ruamel itself loses a lone U+0085 there).
    tree = kots.literal_blocks({"a": {"b": text + "\nsecond line\n"}, "c": ["x\n" + text]})
    assert yamlfile.to_plain(yamlfile.load(yamlfile.dump(tree))[0]) == {
        "a": {"b": text + "\nsecond line\n"}, "c": ["x\n" + text]}


# --- files --------------------------------------------------------------------------------------------------

def test_write_private_file_is_0600_and_leaves_no_temporary(tmp_path):
    dest = tmp_path / "values.yaml"
    dest.write_text("old")
    os.chmod(dest, 0o644)
    kots.write_private_file(str(dest), b"new: 1\n")
    assert dest.read_bytes() == b"new: 1\n"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["values.yaml"]


def test_write_private_file_needs_the_directory(tmp_path):
    with pytest.raises(kots.KotsExportError, match="does not exist: create it"):
        kots.write_private_file(str(tmp_path / "missing" / "values.yaml"), b"x")


def test_backup_is_0600_even_when_the_original_was_not(tmp_path):
    dest = tmp_path / "values.yaml"
    dest.write_text("secret: fixture\n")
    os.chmod(dest, 0o644)
    first = kots.backup_private_file(str(dest))
    second = kots.backup_private_file(str(dest))
    assert first != second
    for backup in (first, second):
        assert Path(backup).read_text() == "secret: fixture\n"
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600
