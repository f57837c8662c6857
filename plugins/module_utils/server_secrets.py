# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets a fresh CircleCI Server 4.x install needs: generated with the standard library, never twice.

Formats: install-4x.md section 1 (reference/). ``SECRETS`` lists every secret the chart needs that the
operator may leave to the installer, with the Secret (name, key) the chart reads and the values path that
carries it. ``plan_secrets`` is pure: given what the cluster, the values file, the operator and the escrow
already hold, it keeps every value that exists anywhere and generates only what exists nowhere.

Precedence, first wins: ``given`` (the operator said so) > ``cluster`` (what runs) > ``values`` (the
operator's file) > ``escrow`` (the vaulted copy, for a lost cluster) > generated.

Only the standard library: the install must not need Docker (``circleci/server-keysets``) or tink.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits

# Helm's ownership metadata on a Secret created before ``helm install`` (helm/helm#7649, Helm >= 3.2), plus
# resource-policy keep so that an atomic rollback of the first install or a helm uninstall keeps the keys.
HELM_MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "Helm")
HELM_RELEASE_NAME_ANNOTATION = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
HELM_RESOURCE_POLICY_ANNOTATION = ("helm.sh/resource-policy", "keep")

ESCROW_FORMAT = 1


class SecretFormatError(ValueError):
    """A given or found secret is not in the format the chart needs; the message says how to fix it."""


def random_string(length, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _index in range(length))


def _websafe_b64(raw):
    """Keyczar's Base64Coder.encodeWebSafe: URL-safe alphabet, no padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def edn(value):
    """Clojure ``pr-str`` of the few types a Keyczar keyset holds: {k v, k v}, [a b], "s", 1, true."""
    if isinstance(value, Keyword):
        return ":" + value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{" + ", ".join("%s %s" % (edn(k), edn(v)) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(edn(v) for v in value) + "]"
    raise TypeError("no EDN form for %r" % type(value))


@dataclass(frozen=True)
class Keyword:
    name: str


def _keyczar_meta(name, purpose, key_type):
    return {"name": name, "purpose": purpose, "type": key_type,
            "versions": [{"exportable": False, "status": "PRIMARY", "versionNumber": 1}], "encrypted": False}


def keyczar_signing_keyset():
    """What ``circleci/server-keysets generate signing`` prints: an HMAC-SHA1 keyset (256-bit key), EDN."""
    key = {"hmacKeyString": _websafe_b64(secrets.token_bytes(32)), "size": 256}
    return edn({Keyword("meta"): _keyczar_meta("signing", "SIGN_AND_VERIFY", "HMAC_SHA1"), Keyword("keys"): {1: key}})


def keyczar_encryption_keyset():
    """What ``circleci/server-keysets generate encryption`` prints: AES-128-CBC with its HMAC-SHA1 key, EDN."""
    key = {"aesKeyString": _websafe_b64(secrets.token_bytes(16)),
           "hmacKey": {"hmacKeyString": _websafe_b64(secrets.token_bytes(32)), "size": 256},
           "mode": "CBC", "size": 128}
    return edn({Keyword("meta"): _keyczar_meta("encryption", "DECRYPT_AND_ENCRYPT", "AES"), Keyword("keys"): {1: key}})


TINK_XCHACHA_TYPE_URL = "type.googleapis.com/google.crypto.tink.XChaCha20Poly1305Key"


def tink_keyset():
    """A cleartext JSON Tink keyset with one XCHACHA20_POLY1305 key, as ``tinkey create-keyset`` makes it.

    The key's ``value`` is the serialized XChaCha20Poly1305Key proto: field 3 (key_value), 32 bytes.
    """
    key_id = secrets.randbelow(2 ** 31 - 1) + 1
    value = base64.b64encode(b"\x1a\x20" + secrets.token_bytes(32)).decode("ascii")
    return json.dumps({"primaryKeyId": key_id, "key": [{
        "keyData": {"typeUrl": TINK_XCHACHA_TYPE_URL, "value": value, "keyMaterialType": "SYMMETRIC"},
        "status": "ENABLED", "keyId": key_id, "outputPrefixType": "TINK"}]}, separators=(",", ":"))


# ---------------------------------------------------------------------------------------- validation
def _check_length(exact=None, minimum=None):
    def check(value):
        if exact is not None and len(value) != exact:
            return "must be exactly %d characters (it has %d)" % (exact, len(value))
        if minimum is not None and len(value) < minimum:
            return "must be at least %d characters (it has %d)" % (minimum, len(value))
        if any(ord(c) > 126 or ord(c) < 33 for c in value):
            return "must be printable ASCII without spaces"
        return None
    return check


def _check_keyczar(purpose, key_type, key_field):
    def check(value):
        if ('"purpose" "%s"' % purpose) not in value or ('"type" "%s"' % key_type) not in value:
            return ("is not a Keyczar %s keyset in EDN (generate one with `docker run circleci/server-keysets:latest "
                    "generate %s -a stdout`, or leave it empty to have one generated)" % (
                        key_type, "signing" if purpose == "SIGN_AND_VERIFY" else "encryption"))
        if ('"%s"' % key_field) not in value or '"PRIMARY"' not in value:
            return "has no PRIMARY key (%s): give the whole keyset, on one line" % key_field
        return None
    return check


def _check_tink(value):
    try:
        doc = json.loads(value)
        primary = doc["primaryKeyId"]
        ids = [k["keyId"] for k in doc["key"]]
    except (ValueError, KeyError, TypeError):
        return ("is not a JSON Tink keyset ({\"primaryKeyId\": ..., \"key\": [...]}); create one with "
                "`tinkey create-keyset --key-template XCHACHA20_POLY1305`, or leave it empty to have one generated")
    if primary not in ids:
        return "has no key with its primaryKeyId %s" % primary
    return None


@dataclass(frozen=True)
class SecretSpec:
    name: str           # the collection's name for it (escrow key, option name)
    secret: str         # the Kubernetes Secret the chart reads
    key: str            # the key in that Secret
    values_path: str    # where the chart reads it in the values
    generate: object    # () -> str
    check: object       # (str) -> None or the problem
    precreate: bool     # the chart generates it itself when absent (4.2+): create it first, Helm-owned


SECRETS = (
    SecretSpec("api_token", "api-token", "api-token", "apiToken", lambda: random_string(48),
               _check_length(minimum=16), True),
    SecretSpec("session_cookie_key", "session-cookie", "session-cookie-key", "sessionCookieKey",
               lambda: random_string(16), _check_length(exact=16), True),
    SecretSpec("pusher_secret", "pusher", "secret", "pusher.secret", lambda: random_string(48),
               _check_length(minimum=16), True),
    SecretSpec("nomad_gossip_key", "nomad-gossip-encryption-key", "gossip-key", "nomad.server.gossip.encryption.key",
               lambda: random_string(32), _check_length(exact=32), True),
    SecretSpec("keyset_signing", "signing-keys", "signing-key", "keyset.signing", keyczar_signing_keyset,
               _check_keyczar("SIGN_AND_VERIFY", "HMAC_SHA1", "hmacKeyString"), False),
    SecretSpec("keyset_encryption", "signing-keys", "encryption-key", "keyset.encryption", keyczar_encryption_keyset,
               _check_keyczar("DECRYPT_AND_ENCRYPT", "AES", "aesKeyString"), False),
    SecretSpec("tink_keyset", "tink", "keyset", "tink.keyset", tink_keyset, _check_tink, False),
    SecretSpec("postgres_password", "postgresql", "postgres-password", "postgresql.auth.postgresPassword",
               lambda: random_string(32), _check_length(minimum=8), False),
    SecretSpec("mongodb_root_password", "mongodb-credentials", "mongodb-root-password", "mongodb.auth.rootPassword",
               lambda: random_string(32), _check_length(minimum=8), False),
    SecretSpec("mongodb_password", "mongodb-credentials", "mongodb-password", "mongodb.auth.password",
               lambda: random_string(20), _check_length(minimum=8), False),
    SecretSpec("rabbitmq_password", "rabbitmq-key", "rabbitmq-password", "rabbitmq.auth.password",
               lambda: random_string(32), _check_length(minimum=8), False),
    SecretSpec("rabbitmq_erlang_cookie", "rabbitmq-key", "rabbitmq-erlang-cookie", "rabbitmq.auth.erlangCookie",
               lambda: random_string(32), _check_length(minimum=16), False),
)
BY_NAME = {spec.name: spec for spec in SECRETS}
SECRET_NAMES = tuple(sorted({spec.secret for spec in SECRETS}))
SOURCES = ("given", "cluster", "values", "escrow")


def dig(tree, dotted):
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(tree, dotted, value):
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def from_values(values):
    """{name: value} of the secrets a values tree carries (empty strings do not count)."""
    found = {}
    for spec in SECRETS:
        value = dig(values or {}, spec.values_path)
        if isinstance(value, str) and value:
            found[spec.name] = value
    return found


def from_cluster(secret_data):
    """{name: value} from ``{secret name: {key: bytes or str}}`` (decoded Secret data); missing keys skipped."""
    found = {}
    for spec in SECRETS:
        value = (secret_data.get(spec.secret) or {}).get(spec.key)
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                continue
        if value:
            found[spec.name] = value
    return found


@dataclass
class SecretsPlan:
    values: dict            # name -> value, every secret of SECRETS
    sources: dict           # name -> given|cluster|values|escrow|generated
    generated: list         # names generated now
    conflicts: list         # sentences: a source disagreed with the one that won (no value in them)
    problems: list          # sentences: a given/found value is malformed (no value in them)

    def values_tree(self):
        """The values subtree that carries every secret (merge it into the chart's values)."""
        tree = {}
        for spec in SECRETS:
            put(tree, spec.values_path, self.values[spec.name])
        tree.setdefault("tink", {})["enabled"] = True
        return tree

    def secrets_to_precreate(self, release, namespace):
        """The Secrets to create before helm install, with Helm's ownership metadata.

        ``data`` (base64), not ``stringData``: the API returns ``data``, so a re-run compares equal.
        """
        objects = {}
        for spec in SECRETS:
            if not spec.precreate:
                continue
            obj = objects.setdefault(spec.secret, secret_object(spec.secret, release, namespace))
            obj["data"][spec.key] = base64.b64encode(self.values[spec.name].encode("utf-8")).decode("ascii")
        return [objects[name] for name in sorted(objects)]


def secret_object(name, release, namespace):
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {HELM_MANAGED_BY_LABEL[0]: HELM_MANAGED_BY_LABEL[1]},
            "annotations": {HELM_RELEASE_NAME_ANNOTATION: release, HELM_RELEASE_NAMESPACE_ANNOTATION: namespace,
                            HELM_RESOURCE_POLICY_ANNOTATION[0]: HELM_RESOURCE_POLICY_ANNOTATION[1]},
        },
        "data": {},
    }


def ownership_problems(existing, release, namespace):
    """Sentences for Secrets (``{name: object}``) that helm install would refuse to adopt."""
    problems = []
    for name in sorted(existing):
        obj = existing[name] or {}
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        owner = annotations.get(HELM_RELEASE_NAME_ANNOTATION)
        owner_ns = annotations.get(HELM_RELEASE_NAMESPACE_ANNOTATION)
        if owner and (owner != release or (owner_ns and owner_ns != namespace)):
            where = (namespace, name, owner_ns or namespace, owner, namespace, release)
            problems.append("Secret %s/%s belongs to the Helm release %s/%s, not %s/%s: install into another "
                            "namespace, or remove that release first." % where)
        elif labels.get(HELM_MANAGED_BY_LABEL[0]) != HELM_MANAGED_BY_LABEL[1] or not owner:
            problems.append("Secret %s/%s exists without Helm's ownership metadata, so helm install would refuse "
                            "it: its value is kept; label it %s=%s and annotate it %s=%s %s=%s (or delete it if "
                            "it is not yours)." % (namespace, name, HELM_MANAGED_BY_LABEL[0], HELM_MANAGED_BY_LABEL[1],
                                                   HELM_RELEASE_NAME_ANNOTATION, release,
                                                   HELM_RELEASE_NAMESPACE_ANNOTATION, namespace))
    return problems


def plan_secrets(given=None, cluster=None, values=None, escrow=None, generator=None):
    """Every secret of SECRETS: the first source holding it, else generated. Pure but for the generator.

    ``given``, ``cluster``, ``values``, ``escrow``: {name: value} (see from_values / from_cluster).
    ``generator``: (SecretSpec) -> str, for tests; default ``spec.generate()``.
    """
    layers = {"given": given or {}, "cluster": cluster or {}, "values": values or {}, "escrow": escrow or {}}
    unknown = sorted(set(layers["given"]) - set(BY_NAME))
    problems = ["Unknown secret %s: the known ones are %s." % (name, ", ".join(sorted(BY_NAME))) for name in unknown]
    plan = SecretsPlan(values={}, sources={}, generated=[], conflicts=[], problems=problems)
    for spec in SECRETS:
        chosen = None
        for source in SOURCES:
            value = layers[source].get(spec.name)
            if value in (None, ""):
                continue
            if chosen is None:
                chosen = source
                plan.values[spec.name] = value
                problem = spec.check(value)
                if problem:
                    plan.problems.append("The %s (%s, Secret %s key %s) from the %s %s." % (
                        spec.name, spec.values_path, spec.secret, spec.key, _source_words(source), problem))
            elif value != plan.values[spec.name] and source != "escrow":
                plan.conflicts.append("%s: the %s differs from the %s, which is kept." % (
                    spec.name, _source_words(source), _source_words(chosen)))
        if chosen is None:
            plan.values[spec.name] = (generator or (lambda s: s.generate()))(spec)
            chosen = "generated"
            plan.generated.append(spec.name)
        plan.sources[spec.name] = chosen
    return plan


def _source_words(source):
    return {"given": "inventory", "cluster": "cluster's Secret", "values": "values file",
            "escrow": "escrow file"}.get(source, source)


# -------------------------------------------------------------------------------------------- escrow
def checksum(values):
    """sha256 of the canonical JSON of the secrets: the same set gives the same checksum, whatever the order."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def escrow_document(values, release, namespace):
    """The escrow's plaintext (JSON; vault-encrypted by the caller) and its checksum."""
    digest = checksum(values)
    text = json.dumps({"format": ESCROW_FORMAT, "release": release, "namespace": namespace,
                       "sha256": digest, "secrets": dict(sorted(values.items()))}, indent=2, sort_keys=True) + "\n"
    return text, digest


def read_escrow(text):
    """{name: value} from an escrow's plaintext; ValueError (no secret in it) when it is damaged."""
    if not text or not str(text).strip():
        return {}
    try:
        doc = json.loads(text)
        values = doc["secrets"]
        recorded = doc["sha256"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("The escrow file is not an escrow of this collection (no secrets/sha256): restore it "
                         "from your backup, or move it away to start a new one.")
    if not isinstance(values, dict) or checksum(values) != recorded:
        raise ValueError("The escrow file's checksum does not match its content: it is damaged. Restore it from "
                         "your backup; do not delete it while the cluster holds keys it alone can recover.")
    return values
