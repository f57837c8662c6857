# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether an installation finished the Vault -> Tink migration (server-4x-docs.md section 2.3).

``read_tink_facts(reader, namespace, release)`` does the reads (through a module_utils.k8s reader);
``evaluate_tink(facts, import_log_text=None)`` is pure and decides. The keyset's content never leaves
``read_tink_facts``: the facts only say whether it was found, decodable and JSON, and how many keys it holds.
"""

from __future__ import annotations

import json
import re

from ansible_collections.circleci.server.plugins.module_utils.k8s import (
    decode_secret_data,
    dig,
    helm_chart_version,
    helm_release,
)

TINK_SECRET = "tink"
TINK_SECRET_KEY = "keyset"
VAULT_STATEFULSET = "vault"
VAULT_POD_SELECTOR = "app=vault"
VAULT_PVC = "data-vault-0"

_IMPORT_ERRORS_RE = re.compile(r"^\s*(\d+)\s*:\s*Error while importing", re.MULTILINE | re.IGNORECASE)
_IMPORT_SUCCESS_RE = re.compile(r"^\s*(\d+)\s*:\s*Success(?:fully)? imported contexts", re.MULTILINE | re.IGNORECASE)


def _truthy(value):
    """True/False for YAML-ish booleans, None when unset or not a boolean."""
    if isinstance(value, bool):
        return value
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    return None


def inspect_keyset(raw):
    """What can be said about a keyset without revealing it: {'decodable', 'json', 'keys', 'problem'}."""
    if raw is None:
        return {"decodable": False, "json": False, "keys": None,
                "problem": "its value is not valid base64 (the Secret's data must be base64; use stringData for "
                           "the raw JSON keyset)"}
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"decodable": False, "json": False, "keys": None,
                    "problem": "its value is not UTF-8 text (was the keyset base64-encoded twice?)"}
    if not str(raw).strip():
        return {"decodable": True, "json": False, "keys": None, "problem": "it is empty"}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {"decodable": True, "json": False, "keys": None,
                "problem": "it is not valid JSON (generate one with: tinkey create-keyset --key-template "
                           "XCHACHA20_POLY1305; if it was base64-encoded twice, store the JSON itself)"}
    if not isinstance(parsed, dict):
        return {"decodable": True, "json": False, "keys": None, "problem": "it is JSON but not a JSON object"}
    keys = parsed.get("key")
    return {"decodable": True, "json": True, "keys": len(keys) if isinstance(keys, list) else None, "problem": None}


def read_tink_facts(reader, namespace, release):
    """Read what section 2.3 names. Raises module_utils.k8s.K8sError (and HelmReleaseError) on failures."""
    record = helm_release(reader, namespace, release)
    values = record.get("config") or {}
    values_keyset = dig(values, "tink.keyset")
    secret = reader.get("Secret", TINK_SECRET, namespace)
    secret_facts = None
    if secret is not None:
        data = decode_secret_data(secret)
        secret_facts = {"has_key": TINK_SECRET_KEY in data}
        if TINK_SECRET_KEY in data:
            secret_facts.update(inspect_keyset(data[TINK_SECRET_KEY]))
    statefulset = reader.get("StatefulSet", VAULT_STATEFULSET, namespace)
    pods = reader.list("Pod", namespace, label_selector=VAULT_POD_SELECTOR)
    pvc = reader.get("PersistentVolumeClaim", VAULT_PVC, namespace)
    return {
        "namespace": namespace,
        "release": release,
        "chart_version": helm_chart_version(record),
        "revision": record.get("version"),
        "tink_enabled": dig(values, "tink.enabled"),
        "values_keyset": inspect_keyset(values_keyset) if values_keyset not in (None, "") else None,
        "secret": secret_facts,
        "vault_internal": dig(values, "vault.internal"),
        "vault_statefulset": statefulset is not None,
        "vault_pods": sorted(((p.get("metadata") or {}).get("name") or "?") for p in pods),
        "vault_pvc": pvc is not None,
    }


def _signal(name, ok, evidence, blocking=True):
    return {"name": name, "ok": bool(ok), "blocking": blocking, "evidence": evidence}


def _keyset_signal(facts):
    secret = facts.get("secret")
    where = "Secret %s/%s" % (facts.get("namespace"), TINK_SECRET)
    if secret is not None and secret.get("has_key"):
        if secret.get("json"):
            count = secret.get("keys")
            return _signal("keyset_present", True, "%s has key %s: a JSON keyset%s." % (
                where, TINK_SECRET_KEY, " with %d key(s)" % count if count is not None else ""))
        return _signal("keyset_present", False, "%s has key %s, but %s." % (where, TINK_SECRET_KEY, secret["problem"]))
    values_keyset = facts.get("values_keyset")
    if values_keyset is not None:
        if values_keyset.get("json"):
            return _signal("keyset_present", True, "tink.keyset is set in the release values (a JSON keyset)%s." % (
                "" if secret is None else "; %s has no key %s" % (where, TINK_SECRET_KEY)))
        return _signal("keyset_present", False, "tink.keyset is set in the release values, but %s." % (
            values_keyset["problem"]))
    if secret is not None:
        return _signal("keyset_present", False, "%s exists but has no key %s, and tink.keyset is not set in the "
                                                "release values." % (where, TINK_SECRET_KEY))
    return _signal("keyset_present", False, "Neither tink.keyset in the release values nor %s with key %s exists." % (
        where, TINK_SECRET_KEY))


def _import_log_signal(text):
    errors = _IMPORT_ERRORS_RE.findall(text)
    success = _IMPORT_SUCCESS_RE.findall(text)
    if not errors:
        return _signal("import_log", False, "The import log has no '<N>: Error while importing' summary line: "
                                            "the import did not finish.")
    count = int(errors[-1])
    imported = " (%s contexts imported)" % success[-1] if success else ""
    if count:
        return _signal("import_log", False, "The import log reports %d: Error while importing%s." % (count, imported))
    return _signal("import_log", True, "The import log reports 0: Error while importing%s." % imported)


_REMEDIES = {
    "tink_enabled": "set tink.enabled: true in values.yaml and run helm upgrade with the installed chart version "
                    "(the vault-to-tink procedure, server-scripts/vault-to-tink)",
    "keyset_present": "create the keyset (tinkey create-keyset --key-template XCHACHA20_POLY1305) and set it as "
                      "tink.keyset or as key keyset of Secret tink (stringData), then helm upgrade",
    "vault_not_internal": "set vault.internal: false in values.yaml and run helm upgrade",
    "no_vault_workload": "finish the migration (helm upgrade with tink.enabled: true and vault.internal: false "
                         "removes the internal Vault); if Vault still runs, contexts may still be encrypted by it",
    "import_log": "rerun import-contexts.sh (with --retry on the retry file it wrote) until the log ends with "
                  "'0: Error while importing', then verify a context-using pipeline",
}


def evaluate_tink(facts, import_log_text=None):
    """{'migrated': bool, 'signals': [...], 'blocking': [sentences]} from ``read_tink_facts``' facts."""
    tink_enabled = _truthy(facts.get("tink_enabled"))
    vault_internal = _truthy(facts.get("vault_internal"))
    workloads = (["StatefulSet %s" % VAULT_STATEFULSET] if facts.get("vault_statefulset") else []) + [
        "pod %s" % name for name in facts.get("vault_pods") or []]
    signals = [
        _signal("tink_enabled", tink_enabled is True,
                "tink.enabled is %s in the release values." % (
                    "true" if tink_enabled else "unset" if facts.get("tink_enabled") is None
                    else json.dumps(facts.get("tink_enabled")))),
        _keyset_signal(facts),
        _signal("vault_not_internal", vault_internal is False,
                "vault.internal is %s in the release values%s." % (
                    "false" if vault_internal is False else "unset" if facts.get("vault_internal") is None
                    else json.dumps(facts.get("vault_internal")),
                    " (the chart's default is true)" if facts.get("vault_internal") is None else "")),
        _signal("no_vault_workload", not workloads,
                "No internal Vault runs (no StatefulSet %s, no pod with label %s)." % (VAULT_STATEFULSET, VAULT_POD_SELECTOR)
                if not workloads else "An internal Vault still runs: %s." % ", ".join(workloads)),
        _signal("vault_pvc_absent", not facts.get("vault_pvc"),
                "PVC %s remains: normal after the migration (Kubernetes keeps a StatefulSet's volumes); delete it "
                "once no backup needs Vault's data." % VAULT_PVC if facts.get("vault_pvc")
                else "No PVC %s." % VAULT_PVC, blocking=False),
    ]
    if import_log_text is not None:
        signals.append(_import_log_signal(import_log_text))
    blocking = ["Vault -> Tink migration not finished: %s To fix it: %s." % (s["evidence"], _REMEDIES[s["name"]])
                for s in signals if s["blocking"] and not s["ok"]]
    return {"migrated": not blocking, "signals": signals, "blocking": blocking}
