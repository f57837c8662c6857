# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CircleCI Server 3.x (KOTS) -> 4.0 (Helm) values transform.

CircleCI's ``kots-exporter.sh`` took the values of the Helm release that KOTS created for 3.x and rewrote
that YAML as text with yq, awk and grep. ``export_values`` applies the same table (rows 1 to 17 of
section 1.4 of the server-scripts specification) as a pure function over parsed values, without the
script's quirks:

* row 9: a missing or null ``telegraf.config.custom_config_file`` stays missing (the script decoded the
  text ``null`` into three garbage bytes); a value that is already plain text is not decoded again;
* row 12: the VM provider prune tests and deletes the same key (the script tested ``ec2`` and deleted
  ``aws``, so a GCP install kept its ``ec2`` block);
* rows 15 and 16: null values and empty ``service_account`` strings are removed from the parsed tree
  (the script deleted every text line containing ``: null``, including lines inside multi-line strings).

Deliberate differences from the script, each safer for an operator:

* rows 11 to 13 delete a provider's block only when the other provider is the enabled one (or, row 11,
  when the autoscaler is disabled); when neither is enabled both blocks are kept and a warning says so;
* row 2 adds the image pull secret in front of the list instead of overwriting its first element;
* the license is taken as given (surrounding white space stripped), not stripped of single quotes;
* a generated secret (the MongoDB password, row 6) is taken from ``previous`` (the file written by an
  earlier run) when it holds one, so a re-run gives the same values.

The function is idempotent on its own output: ``export(export(x)) == export(x)``.
Nothing here imports Ansible.
"""

from __future__ import annotations

import base64
import binascii
import copy
import errno
import os
import re
import secrets
import stat
import string
import tempfile
import time
from collections.abc import Mapping

from ansible_collections.circleci.server.plugins.module_utils import files
from ansible_collections.circleci.server.plugins.module_utils.values.masking import (
    MASK,
    is_secret_key,
    mask_tree,
)

DEFAULT_REGISTRY = "cciserver.azurecr.io"
DEFAULT_IMAGE_PULL_SECRET = "regcred"
NOMAD_RPC_PORT = 4647
MONGODB_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "_"
MONGODB_PASSWORD_LENGTH = 16

# Row 14: keys the 4.0 chart does not know, deleted after their values were moved.
DELETED_KEYS = (
    ("published",),
    ("domainName",),
    ("kong", "annotations"),
    ("postgresql", "postgresqlUsername"),
    ("postgresql", "postgresqlPassword"),
    ("nomad", "server", "rpc", "advertise"),
    ("license",),
)

# The 3.x internal datastores' passwords, in the Secrets their charts made (often generated there, absent from the
# values): (4.0 values path, Secret, key, the values flag that says the datastore is internal). They are carried
# into the 4.0 values before the KOTS cleanup can delete what holds them; kots_cleanup refuses to run without them.
DATASTORE_PASSWORDS = (
    (("postgresql", "auth", "postgresPassword"), "postgresql", "postgresql-password", ("postgresql", "internal")),
    (("mongodb", "auth", "rootPassword"), "mongodb", "mongodb-root-password", ("mongodb", "internal")),
    (("mongodb", "auth", "password"), "mongodb", "mongodb-password", ("mongodb", "internal")),
    (("rabbitmq", "auth", "password"), "rabbitmq", "rabbitmq-password", ("rabbitmq", "internal")),
    (("rabbitmq", "auth", "erlangCookie"), "rabbitmq", "rabbitmq-erlang-cookie", ("rabbitmq", "internal")),
)

# Limits on what is read as values (module_utils/files.py's): a values file is tens of kilobytes; a YAML alias bomb
# or a huge file is refused with a message, not left to hang the module.
MAX_VALUES_BYTES = files.DEFAULT_MAX_BYTES
MAX_VALUES_NODES = files.DEFAULT_MAX_NODES

# A DNS name with at least two labels (the installation's domain; it becomes DNS records and a Nomad endpoint).
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")

# Values that are not under a secret key name but may hold secrets: never shown in a change record.
ALWAYS_MASK = (
    ("telegraf", "config", "custom_config_file"),
)

_MISSING = object()


class KotsExportError(ValueError):
    """Values that cannot be exported; the message says what is wrong and what to do."""


def _kind_name(value) -> str:
    if _is_bool(value):
        return "boolean"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def read_regular_file(path, what, limit=MAX_VALUES_BYTES):
    """The bytes of ``path``, refused (KotsExportError) unless it is a regular file of at most ``limit`` bytes
    (``files.read_bytes``: the type is checked before the file is opened, so a FIFO never blocks the module)."""
    try:
        return files.read_bytes(path, what, limit)
    except files.InputError as exc:
        raise KotsExportError(str(exc))


def read_text_file(path, what, limit=MAX_VALUES_BYTES):
    """``read_regular_file`` decoded as UTF-8 (``files.read_text``); a binary file is refused by name."""
    try:
        return files.read_text(path, what, limit)
    except files.InputError as exc:
        raise KotsExportError(str(exc))


def check_tree_size(tree, what, limit=MAX_VALUES_NODES):
    """Refuse a tree that expands past ``limit`` nodes (YAML aliases), or refers to itself (``files.check_expansion``)."""
    try:
        files.check_expansion(tree, what, limit)
    except files.InputError as exc:
        raise KotsExportError(str(exc))


def check_dest(path):
    """The real path to write dest through (a link to a file is followed), refused (KotsExportError) before anything
    is written when it is a directory, a dangling link, a special file, or in a missing or read-only directory."""
    try:
        real = files.check_dest(path, "dest")
    except files.InputError as exc:
        raise KotsExportError(str(exc))
    directory = os.path.dirname(real) or "."
    mode = stat.S_IMODE(os.stat(directory).st_mode)
    if not mode & 0o222:  # read-only by its mode, which root's access check ignores
        raise KotsExportError("The directory of dest, %s, is read-only (mode %04o): give a dest in a directory the "
                              "module's user may write, or make it writable." % (directory, mode))
    return real


def check_3x_values(tree, what):
    """Refuse values that are not those of a 3.x release: 4.x values keep the domain at global.domainName only."""
    if not isinstance(tree, Mapping):
        return
    if _get(tree, ("domainName",), None) is None and _get(tree, ("global", "domainName"), None) is not None:
        raise KotsExportError(
            "%s holds 4.x values (global.domainName, no top-level domainName): kots_export reads the values of a "
            "CircleCI Server 3.x release deployed by KOTS. An installation already at 4.x is upgraded with "
            "helm_values_migrate and the upgrade playbooks, not migrated." % what)


def check_kots_release(record, namespace, release, kots_objects):
    """Refuse a release that is not a 3.x release deployed by KOTS (chart 3.x, objects labelled by KOTS)."""
    chart = ((((record or {}).get("chart") or {}).get("metadata")) or {}).get("version") or ""
    if not re.match(r"^v?3\.\d+\.\d+", str(chart)):
        raise KotsExportError(
            "Helm release %s in namespace %s is at chart %s, not a CircleCI Server 3.x release: this migration "
            "takes a 3.x install deployed by KOTS to 4.0. For a 4.x install use the upgrade playbooks; nothing "
            "was changed." % (release, namespace, chart or "(unknown)"))
    if not kots_objects:
        raise KotsExportError(
            "No Deployment in namespace %s carries the kots.io/app-slug label KOTS gives what it deploys: release "
            "%s was not deployed by KOTS (or this is the wrong namespace). Nothing was changed." % (namespace, release))


def datastore_passwords(values, read_secret):
    """The passwords of the internal datastores, from their 3.x Secrets: ({values path: text}, {values path: source}).

    ``read_secret(name)`` returns a Secret's decoded data ({key: bytes}) or None. A datastore whose values say
    it is external, and a Secret or key that is absent, give nothing.
    """
    carried, sources = {}, {}
    cache = {}
    for path, secret, key, internal_flag in DATASTORE_PASSWORDS:
        if _is_false(_get(values, internal_flag, None)):
            continue
        if secret not in cache:
            cache[secret] = read_secret(secret) or {}
        raw = cache[secret].get(key)
        if not raw:
            continue
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            continue
        carried[path] = text
        sources[path] = "Secret %s key %s" % (secret, key)
    return carried, sources


def uncarried_passwords(values, read_secret):
    """What the 4.0 values lack of the internal datastores' passwords: ["values path (Secret x key y)"]."""
    carried, sources = datastore_passwords(values, read_secret)
    missing = []
    for path, text in carried.items():
        if _get(values, path, None) != text:
            state = "missing" if not _get(values, path, None) else "different"
            missing.append("%s (%s from %s)" % (path_text(path), state, sources[path]))
    return missing


def path_text(path) -> str:
    """'a.b.c' for ('a', 'b', 'c'); a key holding a dot is bracketed: nginx.annotations[x.y/z]."""
    parts = []
    for key in path:
        key = str(key)
        if "." in key or not parts and not key:
            parts.append("[%s]" % key)
        else:
            parts.append(("." if parts else "") + key)
    return "".join(parts)


def _get(tree, path, default=_MISSING):
    node = tree
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def lookup(tree, path, default=None):
    """The value at path (a tuple of keys) in a tree of mappings, or default."""
    return _get(tree, path, default)


def _parent(tree, path, create):
    """The mapping that holds path[-1], created (and null levels replaced) when create is true."""
    node = tree
    for depth, key in enumerate(path[:-1]):
        child = node.get(key, _MISSING)
        if isinstance(child, Mapping):
            node = child
            continue
        if not create:
            return None
        if child is not _MISSING and child is not None:
            raise KotsExportError(
                "%s is a %s, but the 4.0 values need a mapping there to set %s: fix or remove it in the source "
                "values and run again." % (path_text(path[:depth + 1]), type(child).__name__, path_text(path)))
        node[key] = {}
        node = node[key]
    return node


def _is_bool(value) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "ScalarBoolean"


def _is_true(value) -> bool:
    """The script's test: yq printed the value and compared the text with 'true'."""
    return (_is_bool(value) and bool(value)) or (isinstance(value, str) and value == "true")


def _is_false(value) -> bool:
    return (_is_bool(value) and not bool(value)) or (isinstance(value, str) and value == "false")


def _same(before, value) -> bool:
    """Equal, and of the same kind (True is not 1, "1" is not 1); a quoted and a plain string are the same."""
    if before is _MISSING or before != value:
        return False
    return _is_bool(before) == _is_bool(value) and isinstance(before, str) == isinstance(value, str)


class _Changes:
    """The change records, with every secret value masked as it is recorded."""

    def __init__(self):
        self.records = []

    @staticmethod
    def _secret(path) -> bool:
        if is_secret_key(tuple(path)):
            return True
        return any(tuple(path[:len(prefix)]) == prefix for prefix in ALWAYS_MASK)

    @classmethod
    def shown(cls, path, value, secret=False):
        if value is _MISSING:
            return None
        if value is None or value == "":
            return value
        if secret or cls._secret(path):
            return MASK
        if isinstance(value, (Mapping, list)):
            return mask_tree(value)
        return value

    def add(self, row, action, path, before=_MISSING, after=_MISSING, source=None, secret=False, note=None):
        secret = secret or (source is not None and self._secret(source))
        record = {"row": row, "action": action, "path": path_text(path)}
        if source is not None:
            record["from"] = path_text(source)
        if before is not _MISSING:
            record["before"] = self.shown(path, before, secret)
        if after is not _MISSING:
            record["after"] = self.shown(path, after, secret)
        if note:
            record["note"] = note
        self.records.append(record)


def _assign(changes, tree, path, value, row, source=None, action=None, note=None, secret=False):
    """Set path to value; record the change when the value differs. Returns True when it changed."""
    before = _get(tree, path)
    if _same(before, value):
        return False
    _parent(tree, path, create=True)[path[-1]] = value
    changes.add(row, action or ("set" if before is _MISSING else "changed"), path, before=before, after=value,
                source=source, note=note, secret=secret)
    return True


def _carry(changes, warnings, tree, path, value, source):
    """Set a password carried from a 3.x Secret; warn when the values held another one."""
    before = _get(tree, path, None)
    if before not in (None, "") and before != value:
        warnings.append("%s in the values differs from %s, which the running datastore uses: the Secret's was "
                        "carried." % (path_text(path), source))
    _assign(changes, tree, path, value, "carried", action="carried", note="from %s" % source, secret=True)


def _delete(changes, tree, path, row, note=None):
    parent = _parent(tree, path, create=False)
    if parent is None or path[-1] not in parent:
        return False
    before = parent.pop(path[-1])
    changes.add(row, "deleted", path, before=before, note=note)
    return True


def decode_base64_text(raw):
    """The text base64-encoded in raw, or None when raw is not base64 of UTF-8 text (it is plain text)."""
    compact = raw.strip().replace("\r", "").replace("\n", "")
    if not compact:
        return None
    try:
        decoded = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if any(ord(char) < 32 and char not in "\t\n\r" for char in decoded) or "\x7f" in decoded:
        return None
    return decoded


def generate_password(length=MONGODB_PASSWORD_LENGTH, alphabet=MONGODB_PASSWORD_ALPHABET) -> str:
    """A random password from the alphabet the script used ([A-Za-z0-9_])."""
    return "".join(secrets.choice(alphabet) for _index in range(length))


def _prune_providers(changes, warnings, tree, row, base, first, second, feature_disabled=False):
    """Keep only the enabled provider's block under base; both when neither is enabled."""
    node = _get(tree, base)
    if not isinstance(node, Mapping):
        return
    present = [name for name in (first, second) if name in node]
    if not present:
        return
    if feature_disabled:
        drop, why = [first, second], "%s.enabled is false" % path_text(base)
    elif _is_true(_get(node, (first, "enabled"))):
        drop, why = [second], "%s.enabled is true" % path_text(base + (first,))
    elif _is_true(_get(node, (second, "enabled"))):
        drop, why = [first], "%s.enabled is true" % path_text(base + (second,))
    else:
        if len(present) == 2:
            warnings.append(
                "Neither %s nor %s is enabled: both blocks were kept. Delete the one you do not use from the "
                "exported values." % (path_text(base + (first, "enabled")), path_text(base + (second, "enabled"))))
        return
    for name in drop:
        _delete(changes, tree, base + (name,), row, note=why)


def _remove_structurally(changes, node, path, row, predicate, note):
    """Delete, from every mapping in the tree (also inside lists), the entries predicate(key, value) selects."""
    if isinstance(node, Mapping):
        for key in list(node):
            value = node[key]
            if predicate(key, value):
                del node[key]
                changes.add(row, "deleted", path + (key,), before=value, note=note)
            else:
                _remove_structurally(changes, value, path + (key,), row, predicate, note)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _remove_structurally(changes, item, path + (index,), row, predicate, note)


def _global_first(tree):
    """Move the top-level global key in front, where an operator looks for it first."""
    if "global" not in tree or next(iter(tree)) == "global":
        return
    value = tree.pop("global")
    if hasattr(tree, "insert"):
        tree.insert(0, "global", value)
    else:
        rest = list(tree.items())
        tree.clear()
        tree["global"] = value
        tree.update(rest)


def _block_safe(text) -> bool:
    if "\n" not in text:
        return False
    if text[:1] in (" ", "\t", "\n"):
        return False
    for line in text.split("\n"):
        if line != line.rstrip(" \t"):
            return False
        if any(not (char.isprintable() or char == "\t") for char in line):
            return False
    return True


def literal_blocks(tree):
    """Show the plain multi-line strings of a tree as YAML literal blocks (``|``) when ruamel is there."""
    try:
        from ruamel.yaml.scalarstring import LiteralScalarString
    except ImportError:  # pragma: no cover - the strings stay double-quoted
        return tree

    def walk(node):
        items = node.items() if isinstance(node, Mapping) else enumerate(node) if isinstance(node, list) else ()
        for key, value in list(items):
            if type(value) is str and _block_safe(value):  # pylint: disable=unidiomatic-typecheck
                node[key] = LiteralScalarString(value)
            else:
                walk(value)
    walk(tree)
    return tree


class Export:
    """The result of ``export_values``: the 4.0 values and what was done to get them."""

    def __init__(self, values, changes, warnings, facts):
        self.values = values
        self.changes = changes
        self.warnings = warnings
        self.facts = facts


def export_values(values, license_key, registry=DEFAULT_REGISTRY, image_pull_secret=DEFAULT_IMAGE_PULL_SECRET,
                  previous=None, password_factory=generate_password, carried=None, carried_sources=None) -> Export:
    """The 4.0 values for the 3.x release values ``values`` (never modified).

    ``previous``: the values an earlier run wrote (or None); its generated secrets are reused.
    ``carried``: {4.0 values path: password} read from the 3.x datastores' Secrets (``datastore_passwords``);
    they win over the values (the Secret holds what the running datastore uses) and nothing is generated for them.
    ``password_factory``: makes the MongoDB password when neither the values nor ``previous`` hold one.
    Raises KotsExportError when the values cannot be exported.
    """
    if not isinstance(values, Mapping):
        raise KotsExportError(
            "The source values are a %s, not a mapping: give the values of the CircleCI Server 3.x release "
            "(what `helm get values circleci-server -n <namespace> -o yaml` prints)." % type(values).__name__)
    if "COMPUTED VALUES" in values:
        raise KotsExportError(
            "The source holds the computed values (helm get values --all), which would pin the 3.x chart's defaults "
            "(image tags among them) in the 4.0 values: give the user-supplied values, saved without --all.")
    license_key = (license_key or "").strip() if isinstance(license_key, str) or license_key is None else license_key
    if not license_key or not isinstance(license_key, str):
        raise KotsExportError("The license is empty: give the CircleCI Server 4.x license string that CircleCI sent.")
    registry = (registry or "").strip()
    if not registry:
        raise KotsExportError("The image registry is empty: give the registry host, for example %s." % DEFAULT_REGISTRY)

    out = copy.deepcopy(values)
    changes = _Changes()
    warnings = []

    # Row 1: the top-level domainName becomes global.domainName (structurally: no awk over the text).
    top = _get(out, ("domainName",))
    current = _get(out, ("global", "domainName"))
    for where, candidate in (("domainName", top), ("global.domainName", current)):
        if candidate not in (_MISSING, None) and not isinstance(candidate, str):
            raise KotsExportError(
                "%s is a %s, not a domain name: set it to the installation's domain as a string, for example "
                "circleci.example.com, in the source values and run again." % (where, _kind_name(candidate)))
        if isinstance(candidate, str) and candidate.strip() and not DOMAIN_RE.match(candidate.strip()):
            raise KotsExportError(
                "%s is not a DNS name (letters, digits, '-' and at least one '.'): set it to the installation's "
                "domain, for example circleci.example.com, in the source values and run again." % where)
    if top not in (_MISSING, None) and str(top).strip():
        domain = str(top).strip()
        _assign(changes, out, ("global", "domainName"), domain, "1", source=("domainName",), action="copied")
    elif isinstance(current, str) and current.strip():
        domain = current.strip()
    else:
        raise KotsExportError(
            "The values have no domainName (3.x keeps it at the top level, 4.x at global.domainName): check that "
            "they are the values of the CircleCI Server release (helm get values circleci-server -n <namespace> "
            "-o yaml), or add domainName to them.")

    # Row 2: the image pull secret, added in front of the list when it is not there.
    pulls = _get(out, ("global", "imagePullSecrets"))
    if isinstance(pulls, list):
        names = [item.get("name") if isinstance(item, Mapping) else item for item in pulls]
        if image_pull_secret not in names:
            _assign(changes, out, ("global", "imagePullSecrets"), [{"name": image_pull_secret}] + list(pulls), "2")
    else:
        _assign(changes, out, ("global", "imagePullSecrets"), [{"name": image_pull_secret}], "2")

    # Row 3: the 4.x license (the 3.x top-level license is deleted by row 14).
    _assign(changes, out, ("global", "license"), license_key, "3", secret=True)

    # Row 4: kong's service annotations move to nginx.
    kong_annotations = _get(out, ("kong", "annotations"))
    if kong_annotations not in (_MISSING, None):
        _assign(changes, out, ("nginx", "annotations"), copy.deepcopy(kong_annotations), "4",
                source=("kong", "annotations"), action="copied")

    # Row 5: an ACM certificate on kong's load balancer stays on nginx's.
    if _is_true(_get(out, ("kong", "aws_acm", "enabled"))):
        _assign(changes, out, ("nginx", "aws_acm", "enabled"), True, "5", source=("kong", "aws_acm", "enabled"))

    # The datastores' passwords from their 3.x Secrets (not a row of the script, which lost those absent from
    # the values): the cluster's, never generated.
    carried = carried or {}
    carried_sources = carried_sources or {}
    for path in sorted(carried):
        if path == ("postgresql", "auth", "postgresPassword"):
            continue  # after row 10, which sets it from postgresql.postgresqlPassword
        _carry(changes, warnings, out, path, carried[path], carried_sources.get(path, "its Secret"))

    # Row 6: a MongoDB password when there is none, the same one on every run.
    generated = []
    if _get(out, ("mongodb", "auth", "password"), None) is None:
        earlier = _get(previous, ("mongodb", "auth", "password"), None) if isinstance(previous, Mapping) else None
        if isinstance(earlier, str) and earlier:
            _assign(changes, out, ("mongodb", "auth", "password"), earlier, "6", action="reused",
                    note="taken from the file an earlier run wrote", secret=True)
        else:
            _assign(changes, out, ("mongodb", "auth", "password"), password_factory(), "6", action="generated",
                    secret=True)
        generated.append("mongodb.auth.password")

    # Rows 7 and 8: where the 4.x images come from.
    _assign(changes, out, ("global", "container", "registry"), registry, "7")
    _assign(changes, out, ("global", "container", "org"), "", "8")

    # Row 9: the telegraf custom config is plain text in 4.x (base64 in 3.x); nothing is made up when absent.
    telegraf_path = ("telegraf", "config", "custom_config_file")
    telegraf = _get(out, telegraf_path)
    if isinstance(telegraf, str) and telegraf.strip():
        decoded = decode_base64_text(telegraf)
        if decoded is not None:
            _assign(changes, out, telegraf_path, decoded, "9", action="decoded")

    # Row 10: the Postgres credentials move under postgresql.auth.
    internal_value = _get(out, ("postgresql", "internal"))
    if _is_false(internal_value):
        internal = False
    else:
        internal = True
        if not _is_true(internal_value):
            warnings.append("postgresql.internal is not set in the source values: Postgres was taken as internal "
                            "(the chart's default). Set postgresql.internal: false in the source if it is external.")
    password = _get(out, ("postgresql", "postgresqlPassword"), None)
    if internal:
        if password is not None:
            _assign(changes, out, ("postgresql", "auth", "postgresPassword"), password, "10a",
                    source=("postgresql", "postgresqlPassword"), action="copied")
        _assign(changes, out, ("postgresql", "auth", "username"), "", "10a")
        _assign(changes, out, ("postgresql", "auth", "existingSecret"), "", "10a")
        pg_path = ("postgresql", "auth", "postgresPassword")
        if pg_path in carried:
            _carry(changes, warnings, out, pg_path, carried[pg_path], carried_sources.get(pg_path, "its Secret"))
        if not _get(out, ("postgresql", "auth", "postgresPassword"), None):
            warnings.append(
                "postgresql.auth.postgresPassword is empty: the 4.0 chart would create a new password that does not "
                "match the existing database. Set it to the password in the 3.x 'postgresql' Secret (key "
                "postgresql-password) before the upgrade, and before the KOTS cleanup deletes that Secret.")
    else:
        username = _get(out, ("postgresql", "postgresqlUsername"), None)
        if password is not None:
            _assign(changes, out, ("postgresql", "auth", "password"), password, "10b",
                    source=("postgresql", "postgresqlPassword"), action="copied")
        if username is not None:
            _assign(changes, out, ("postgresql", "auth", "username"), username, "10b",
                    source=("postgresql", "postgresqlUsername"), action="copied")
        _assign(changes, out, ("postgresql", "auth", "existingSecret"), "", "10b")

    # Rows 11 to 13: only the enabled provider's block is kept.
    _prune_providers(changes, warnings, out, "11", ("nomad", "auto_scaler"), "aws", "gcp",
                     feature_disabled=_is_false(_get(out, ("nomad", "auto_scaler", "enabled"))))
    _prune_providers(changes, warnings, out, "12", ("vm_service", "providers"), "ec2", "gcp")
    _prune_providers(changes, warnings, out, "13", ("object_storage",), "s3", "gcs")

    # Row 14: the 3.x keys the 4.0 chart does not know.
    for path in DELETED_KEYS:
        _delete(changes, out, path, "14")

    # Row 17 (the script did it in its KOTS cleanup step): the KOTS MinIO values. An enabled MinIO held the
    # object storage: say so, the 4.0 chart has no MinIO of its own.
    minio_enabled = _is_true(_get(out, ("minio", "enabled")))
    if minio_enabled:
        warnings.append(
            "minio.enabled is true: the 3.x MinIO held the object storage, and the 4.0 chart has no MinIO. Its "
            "values are not carried (the 4.0 chart refuses them): before the upgrade, point object_storage.s3 "
            "(endpoint, bucketName, accessKey, secretKey) of the exported values at that MinIO or at the storage "
            "its data moves to.")
    _delete(changes, out, ("minio",), "17", note="minio.enabled was true: see the warning" if minio_enabled else None)

    # Rows 15 and 16, on the parsed tree: null values, and empty service_account strings.
    _remove_structurally(changes, out, (), "15", lambda key, value: value is None, "null value")
    _remove_structurally(changes, out, (), "16", lambda key, value: key == "service_account" and value == "",
                         "empty service_account")

    _global_first(out)

    facts = {
        "domain_name": domain,
        "postgresql_internal": internal,
        "nginx_aws_acm": _is_true(_get(out, ("nginx", "aws_acm", "enabled"))),
        "nomad_mtls_enabled": _is_true(_get(out, ("nomad", "server", "rpc", "mTLS", "enabled"))),
        "nomad_server_endpoint": "%s:%d" % (domain, NOMAD_RPC_PORT),
        "object_storage": next((name for name in ("s3", "gcs")
                                if _is_true(_get(out, ("object_storage", name, "enabled")))), None),
        "generated": generated,
        "carried": [path_text(path) for path in sorted(carried)],
        "minio_enabled": minio_enabled,
    }
    if facts["object_storage"] is None:
        warnings.append("Neither object_storage.s3.enabled nor object_storage.gcs.enabled is true: CircleCI Server 4.0 "
                        "needs one of them. Enable the one you use in the exported values.")
    return Export(out, changes.records, warnings, facts)


def manual_actions(facts, namespace="<namespace>", dest="<values file>"):
    """What the operator must still do by hand after the helm upgrade, one sentence each."""
    domain = facts["domain_name"]
    service = "circleci-proxy-acm" if facts.get("nginx_aws_acm") else "circleci-proxy"
    actions = [
        "DNS: after the upgrade, point %s and app.%s at the external address of the %s LoadBalancer service "
        "(kubectl -n %s get svc %s). The records of vm-service, output-processor and nomad are no longer needed: "
        "output-processor and vm-service become ClusterIP services, and the KOTS load balancers circleci-server-traefik "
        "and nomad-server-external are replaced by kong and nomad-server (ClusterIP) but keep running until deleted "
        "(kubectl -n %s delete service circleci-server-traefik nomad-server-external, once DNS points at %s)."
        % (domain, domain, service, namespace, service, namespace, service),
        "Nomad Terraform: re-run the Nomad module with server_endpoint = \"%s\" (server-terraform 4.0.x; from 4.1.0 "
        "nomad_server_hostname = \"%s\" and nomad_server_port = %d), then replace the Nomad clients. This re-issues "
        "the Nomad server and client certificates." % (facts["nomad_server_endpoint"], domain, NOMAD_RPC_PORT),
        "Nomad mTLS: put the Terraform outputs nomad_tls_ca_base64, nomad_server_cert_base64 and "
        "nomad_server_key_base64 in nomad.server.rpc.mTLS.CACertificate, .certificate and .privateKey of %s, set "
        "nomad.server.rpc.mTLS.enabled: true, and upgrade again.%s" % (
            dest, " The certificates there now were issued for the 3.x endpoint and must be replaced."
            if facts.get("nomad_mtls_enabled") else ""),
        "Workflow history: it is unavailable while the 4.0 workflows conductor moves it from Postgres to object "
        "storage; raise workflows_conductor_event_consumer.replicas and workflows_conductor_grpc.replicas to "
        "speed that up.",
    ]
    return actions


def mask_values(values):
    """A copy of the values with every secret masked (for diffs and logs)."""
    masked = mask_tree(values)
    for path in ALWAYS_MASK:
        parent = _parent(masked, path, create=False)
        if parent is not None and parent.get(path[-1]) not in (None, ""):
            parent[path[-1]] = MASK
    return masked


# Files: the exported values hold every secret of the installation, so they are written 0600 only.
PRIVATE_MODE = 0o600


def write_private_file(path, data):
    """Write bytes to path atomically (temporary file in the same directory, fsync, rename), mode 0600.

    The temporary file is 0600 from its creation, so the data is never readable by others, even briefly.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise KotsExportError("The directory of dest, %s, does not exist: create it (mode 0700) and run again." % directory)
    existing = os.stat(path) if os.path.exists(path) else None
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, PRIVATE_MODE)
        if existing is not None and os.geteuid() == 0:
            os.chown(temporary, existing.st_uid, existing.st_gid)  # root rewriting an operator's file keeps its owner
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    try:
        directory_handle = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - a platform without directory handles
        return
    try:
        os.fsync(directory_handle)
    except OSError:  # pragma: no cover - some file systems refuse to fsync a directory
        pass
    finally:
        os.close(directory_handle)


def backup_private_file(path):
    """Copy path to '<path>.<timestamp>~' with mode 0600 (never more open) and return the copy's path."""
    with open(path, "rb") as stream:
        data = stream.read()
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S")
    for attempt in range(100):
        backup = "%s.%s%s~" % (path, stamp, ".%d" % attempt if attempt else "")
        try:
            handle = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue
            raise
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(backup, PRIVATE_MODE)
        return backup
    raise KotsExportError("Could not find a free backup name for %s: remove old backups next to it." % path)
