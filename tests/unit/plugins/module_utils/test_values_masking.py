# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.circleci.server.plugins.module_utils.values import yamlfile
from ansible_collections.circleci.server.plugins.module_utils.values.masking import MASK, is_secret_key, mask_tree, mask_value


@pytest.mark.parametrize("path", [
    "apiToken", "sessionCookieKey", "keyset", "keyset.signing", "tink.keyset", "global.license", "pusher.secret",
    "github.clientSecret", "github.defaultToken", "vault.token", "postgresql.auth.postgresPassword",
    "postgresql.auth.password", "mongodb.auth.rootPassword", "rabbitmq.auth.erlangCookie", "tls.privateKey",
    "tls.certificate", "nomad.server.rpc.mTLS.privateKey", "nomad.server.rpc.mTLS.CACertificate",
    "nomad.server.gossip.encryption.key", "object_storage.s3.accessKey", "object_storage.s3.secretKey",
    "machine_provisioner.providers.ec2.secretKey", "machine_provisioner.providers.gcp.service_account",
    "oidc_service.json_web_keys", "proxy.http.auth.password", ("nginx", "annotations", "x.y/api-key"),
])
def test_secret_looking_keys(path):
    assert is_secret_key(path)


@pytest.mark.parametrize("path", [
    "global.domainName", "global.imagePullSecrets", "checkout.sshKeyType", "postgresql.auth.existingSecret",
    "oidc_service.token_max_ttl", "machine_provisioner.providers.ec2.tags", "nomad.server.gossip.encryption.enabled",
    "rabbitmq.auth.existingPasswordSecret", "oidc_service.json_web_keys_secret_name", "github.clientId",
])
def test_ordinary_keys(path):
    assert not is_secret_key(path)


def test_mask_tree_masks_secrets_keeps_the_rest_and_copies():
    tree = {
        "apiToken": "t0k3n",
        "keyset": {"signing": "s", "encryption": "e"},
        "global": {"domainName": "ci.example.com", "license": "L", "imagePullSecrets": ["regcred"]},
        "tls": {"certificate": "", "privateKey": None},
        "x": ["-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"],
        "telegraf": {"custom_config": "[[outputs.influxdb_v2]]\n  token = \"abc\"\n"},
        "count": 3,
    }
    masked = mask_tree(tree)
    assert masked == {
        "apiToken": MASK,
        "keyset": MASK,
        "global": {"domainName": "ci.example.com", "license": MASK, "imagePullSecrets": ["regcred"]},
        "tls": {"certificate": "", "privateKey": None},
        "x": [MASK],
        "telegraf": {"custom_config": MASK},
        "count": 3,
    }
    assert tree["apiToken"] == "t0k3n" and tree["keyset"]["signing"] == "s"


def test_mask_value_by_path():
    assert mask_value("global.license", "L") == MASK
    assert mask_value("global", {"license": "L", "domainName": "d"}) == {"license": MASK, "domainName": "d"}
    assert mask_value("global.domainName", "d") == "d"


def test_mask_tree_keeps_round_trip_comments():
    tree, layout = yamlfile.load("a:\n  password: hunter2  # the password\n  user: me  # who\n")
    masked = mask_tree(tree)
    assert yamlfile.dump(masked, layout) == "a:\n  password: '********' # the password\n  user: me  # who\n"
    assert tree["a"]["password"] == "hunter2"
