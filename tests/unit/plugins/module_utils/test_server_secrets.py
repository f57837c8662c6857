# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""server_secrets: the generated keysets read by independent readers, and nothing ever regenerated.

The Keyczar keysets are read by a small EDN reader written here from the EDN spec (edn-format.org), not
by the printer under test; the Tink keyset is read by the ``tink`` package (a test-only dependency) and
used for an AEAD round trip.
"""
from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.circleci.server.plugins.module_utils import server_secrets as ss


# ------------------------------------------------------------------ an independent EDN reader (subset)
class EdnKeyword(str):
    pass


_TOKEN = re.compile(r'\s*(?:(?P<open>[{\[(])|(?P<close>[}\])])|"(?P<str>(?:[^"\\]|\\.)*)"|'
                    r'(?P<kw>:[A-Za-z][\w.*+!?-]*)|(?P<int>-?\d+)|(?P<sym>true|false|nil))|\s*,')


def parse_edn(text):
    """Maps, vectors, strings, keywords, integers, true/false/nil; commas are whitespace (EDN spec)."""
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos] in " \t\n,":
            pos += 1
            continue
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError("EDN: unexpected %r at %d" % (text[pos:pos + 10], pos))
        tokens.append(match)
        pos = match.end()

    def read(index):
        token = tokens[index]
        if token.group("open"):
            closer = {"{": "}", "[": "]", "(": ")"}[token.group("open")]
            items, index = [], index + 1
            while not tokens[index].group("close"):
                item, index = read(index)
                items.append(item)
            if tokens[index].group("close") != closer:
                raise ValueError("EDN: mismatched %s" % closer)
            if closer == "}":
                if len(items) % 2:
                    raise ValueError("EDN: odd map")
                return dict(zip(items[::2], items[1::2])), index + 1
            return items, index + 1
        if token.group("str") is not None:
            return re.sub(r"\\(.)", r"\1", token.group("str")), index + 1
        if token.group("kw"):
            return EdnKeyword(token.group("kw")[1:]), index + 1
        if token.group("int"):
            return int(token.group("int")), index + 1
        return {"true": True, "false": False, "nil": None}[token.group("sym")], index + 1

    value, end = read(0)
    if end != len(tokens):
        raise ValueError("EDN: trailing data")
    return value


def websafe_decode(text):
    assert re.fullmatch(r"[A-Za-z0-9_-]+", text), "not unpadded URL-safe base64"
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_signing_keyset_is_keyczar_hmac_sha1_edn():
    text = ss.keyczar_signing_keyset()
    assert len(text) == 255 and "\n" not in text and "'" not in text
    keyset = parse_edn(text)
    assert set(keyset) == {"meta", "keys"} and all(isinstance(k, EdnKeyword) for k in keyset)
    meta = keyset["meta"]
    assert meta == {"name": "signing", "purpose": "SIGN_AND_VERIFY", "type": "HMAC_SHA1", "encrypted": False,
                    "versions": [{"exportable": False, "status": "PRIMARY", "versionNumber": 1}]}
    assert list(keyset["keys"]) == [1]           # the version key is an integer, not a string
    key = keyset["keys"][1]
    assert key["size"] == 256 and len(websafe_decode(key["hmacKeyString"])) == 32


def test_encryption_keyset_is_keyczar_aes128_cbc_edn():
    text = ss.keyczar_encryption_keyset()
    assert len(text) == 335
    keyset = parse_edn(text)
    assert keyset["meta"]["purpose"] == "DECRYPT_AND_ENCRYPT" and keyset["meta"]["type"] == "AES"
    key = keyset["keys"][1]
    assert key["mode"] == "CBC" and key["size"] == 128 and len(websafe_decode(key["aesKeyString"])) == 16
    assert key["hmacKey"]["size"] == 256 and len(websafe_decode(key["hmacKey"]["hmacKeyString"])) == 32


def test_keysets_are_random():
    assert ss.keyczar_signing_keyset() != ss.keyczar_signing_keyset()
    assert ss.tink_keyset() != ss.tink_keyset()


def test_edn_reader_is_not_a_rubber_stamp():
    for bad in ('{:meta {"a" 1}', '{:meta}', '{:a 1} x', "{:keys {1 'x'}}"):
        with pytest.raises((ValueError, IndexError)):
            parse_edn(bad)


def test_tink_package_reads_the_keyset_and_it_encrypts():
    tink = pytest.importorskip("tink")
    from tink import aead, secret_key_access  # pylint: disable=import-outside-toplevel
    aead.register()
    for _attempt in range(5):
        text = ss.tink_keyset()
        handle = tink.json_proto_keyset_format.parse(text, secret_key_access.TOKEN)
        primitive = handle.primitive(aead.Aead)
        assert primitive.decrypt(primitive.encrypt(b"context secret", b"ad"), b"ad") == b"context secret"
        info = json.loads(text)
        assert info["key"][0]["keyData"]["typeUrl"].endswith("XChaCha20Poly1305Key")
        assert 0 < info["primaryKeyId"] < 2 ** 31


def test_tink_package_refuses_a_broken_keyset():
    tink = pytest.importorskip("tink")
    from tink import secret_key_access  # pylint: disable=import-outside-toplevel
    broken = json.loads(ss.tink_keyset())
    broken["key"][0]["keyData"]["value"] = base64.b64encode(b"\x1a\x05short").decode()
    with pytest.raises(Exception):
        handle = tink.json_proto_keyset_format.parse(json.dumps(broken), secret_key_access.TOKEN)
        from tink import aead  # pylint: disable=import-outside-toplevel
        aead.register()
        handle.primitive(aead.Aead)


def test_generated_strings_have_the_documented_lengths():
    plan = ss.plan_secrets()
    assert len(plan.values["session_cookie_key"]) == 16 and len(plan.values["nomad_gossip_key"]) == 32
    assert len(plan.values["api_token"]) == 48 and len(plan.values["rabbitmq_erlang_cookie"]) == 32
    assert all(re.fullmatch(r"[A-Za-z0-9]+", plan.values[name]) for name in
               ("api_token", "session_cookie_key", "pusher_secret", "postgres_password", "mongodb_password"))
    assert plan.problems == [] and sorted(plan.generated) == sorted(ss.BY_NAME)


def test_values_tree_and_precreated_secrets():
    plan = ss.plan_secrets()
    tree = plan.values_tree()
    assert tree["tink"] == {"enabled": True, "keyset": plan.values["tink_keyset"]}
    assert tree["keyset"]["signing"] == plan.values["keyset_signing"]
    assert tree["nomad"]["server"]["gossip"]["encryption"]["key"] == plan.values["nomad_gossip_key"]
    objects = {o["metadata"]["name"]: o for o in plan.secrets_to_precreate("circleci-server", "ns1")}
    assert sorted(objects) == ["api-token", "nomad-gossip-encryption-key", "pusher", "session-cookie"]
    for obj in objects.values():
        assert obj["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}
        assert obj["metadata"]["annotations"] == {"meta.helm.sh/release-name": "circleci-server",
                                                  "meta.helm.sh/release-namespace": "ns1",
                                                  "helm.sh/resource-policy": "keep"}
    assert base64.b64decode(objects["session-cookie"]["data"]["session-cookie-key"]).decode() == \
        plan.values["session_cookie_key"]


def test_given_malformed_values_are_problems_without_the_value():
    plan = ss.plan_secrets(given={"session_cookie_key": "CANARY-short", "tink_keyset": "CANARY{",
                                  "keyset_signing": "CANARY-not-edn", "bogus": "x"})
    text = " ".join(plan.problems)
    assert "exactly 16 characters" in text and "tinkey create-keyset" in text and "server-keysets" in text
    assert "Unknown secret bogus" in text and "CANARY" not in text


def test_conflicts_name_the_kept_source_never_a_value():
    plan = ss.plan_secrets(given={"api_token": "A" * 48}, cluster={"api_token": "B" * 48},
                           values={"api_token": "C" * 48})
    assert plan.values["api_token"] == "A" * 48 and plan.sources["api_token"] == "given"
    assert len(plan.conflicts) == 2 and "AAAA" not in " ".join(plan.conflicts)


def test_found_in_cluster_and_values():
    cluster = ss.from_cluster({"api-token": {"api-token": b"T" * 48}, "signing-keys": {"signing-key": b"\xff"}})
    assert cluster == {"api_token": "T" * 48}       # undecodable bytes are not a secret to keep
    values = ss.from_values({"keyset": {"signing": "S", "encryption": ""}, "rabbitmq": {"auth": {"erlangCookie": "E"}}})
    assert values == {"keyset_signing": "S", "rabbitmq_erlang_cookie": "E"}


def test_escrow_round_trip_and_damage():
    plan = ss.plan_secrets()
    text, digest = ss.escrow_document(plan.values, "circleci-server", "ns1")
    assert ss.read_escrow(text) == plan.values and digest == ss.checksum(dict(reversed(list(plan.values.items()))))
    doc = json.loads(text)
    doc["secrets"]["api_token"] = "tampered"
    with pytest.raises(ValueError, match="checksum does not match"):
        ss.read_escrow(json.dumps(doc))
    with pytest.raises(ValueError, match="not an escrow"):
        ss.read_escrow("{}")
    assert ss.read_escrow("") == {}


def test_ownership_problems():
    owned = ss.secret_object("tink", "circleci-server", "ns1")
    other = ss.secret_object("tink", "other", "ns1")
    bare = {"metadata": {"name": "signing-keys"}}
    assert ss.ownership_problems({"tink": owned}, "circleci-server", "ns1") == []
    problems = ss.ownership_problems({"tink": other, "signing-keys": bare}, "circleci-server", "ns1")
    assert len(problems) == 2 and "belongs to the Helm release ns1/other" in problems[1]
    assert "label it app.kubernetes.io/managed-by=Helm" in problems[0]


# ----------------------------------------------------------------------- never regenerate (hypothesis)
NAMES = sorted(ss.BY_NAME)
secret_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
layer = st.dictionaries(st.sampled_from(NAMES), secret_text, max_size=len(NAMES))


@settings(max_examples=200, deadline=None)
@given(given_=layer, cluster=layer, values=layer, escrow=layer)
def test_never_regenerates_what_exists_anywhere(given_, cluster, values, escrow):
    plan = ss.plan_secrets(given=given_, cluster=cluster, values=values, escrow=escrow)
    for name in NAMES:
        holders = [layer_ for layer_ in (given_, cluster, values, escrow) if name in layer_]
        if holders:
            assert plan.values[name] == holders[0][name] and name not in plan.generated
        else:
            assert name in plan.generated
    # A second run that finds the first run's set anywhere (here: only the cluster) generates nothing.
    again = ss.plan_secrets(cluster=plan.values)
    assert again.generated == [] and again.values == plan.values
    # ... or only the escrow (the cluster and the values file lost).
    restored = ss.plan_secrets(escrow=ss.read_escrow(ss.escrow_document(plan.values, "r", "n")[0]))
    assert restored.generated == [] and restored.values == plan.values
