"""Seeded lab scenarios: the data the lab reads to build a CircleCI Server world to act on.

One folder per scenario holds a ``scenario.yaml`` and, for the base scenarios, the operator's
``values.yaml`` (realistic, commented, obviously fake secrets). A variant names its ``base`` and
overrides only what differs; ``load_scenario`` deep-merges the chain (mappings merge, lists and
scalars replace, ``null`` deletes the key) and makes file paths absolute. Folders whose name starts
with ``_`` hold shared parts and are not scenarios.

Fields of a merged scenario (every key of ``scenario.yaml``; see ``aws-4.2/scenario.yaml``):

- ``name``, ``dir``, ``chain`` (added by the loader: base-most first), ``description``, ``base``.
- ``server_version``: chart version of the release (``tests.lab.charts.chart_path`` builds it).
- ``cloud``: ``aws`` or ``gcp``.
- ``kubernetes``: ``version`` (gitVersion the API server reports), ``distribution`` (eks|gke),
  ``cluster_name``, ``namespace``, ``oidc_issuer`` (EKS) / ``location`` (GKE), ``extra_secrets``
  (objects outside the chart, e.g. ``regcred``: name, type, registry, username, password).
- ``helm``: ``release``; ``history`` (earlier revisions, oldest first: ``{version, values_overrides}``,
  each applied over the scenario's values); ``values_file`` (absolute); ``values_overrides`` (applied
  over ``values_file`` for the current revision); ``migrated_values_file`` (absolute, a hand-migrated 4.3
  copy of the values). The release ends at revision ``len(history) + 1`` with ``server_version``.
- ``helm.installed``: false for a cluster with no release and no namespace (``aws-empty``, ``gcp-empty``).
- ``install`` (scenarios for install.yml): ``inventory`` (the operator's variables, added to the lab's
  inventory; no secret), ``target_version`` (default: the newest stand-in chart), ``terraform_outputs``
  (a recorded ``terraform output -json`` file, absolute after loading).
- ``tink``: ``migrated`` (bool), ``leftover_vault_pvc`` (``{name, size, labels}`` or null).
- ``velero``: ``namespace``, ``backup`` (null = none, else ``name, phase, age_hours,
  duration_minutes, errors, warnings, storage_location, ttl, included_namespaces, labels``).
- ``nomad``: ``clients``, ``node_class``, ``datacenter``, ``client_version``, ``server_address``,
  ``boot_delay_seconds``, ``jobs`` (``interval_seconds``, ``duration_seconds: [min, max]``).
- ``logs``: ``{workload: {server minor: [{at: lab seconds after pod start, line: text}]}}``.
- ``datastores``: ``{mongodb: {fcv}}``: the featureCompatibilityVersion of the internal MongoDB's data (default:
  the minor of the first MongoDB image that runs). The versions themselves are the images' tags: set
  ``helm.values_overrides.mongodb.image`` / ``postgresql.image`` to change them (``tests/lab/datastores.py``).
- ``aws`` (cloud aws): ``region``, ``account_id``, ``oidc_provider_arn``, ``vpc`` (``id, cidr,
  subnets[{id, cidr, az}]``), ``nomad_clients`` (``asg{name, min_size, max_size, desired_capacity,
  subnets, launch_template_version, tags}``, ``launch_template{name, instance_type, image{id, name,
  owner}, security_group{id, name, ingress}, metadata_http_tokens, user_data, tags}``), ``vm_service``
  (``iam_role{name, arn, trust_policy, inline_policies}``, ``security_group{id, name, description, vpc,
  ingress[{protocol, port_from, port_to, cidr, description}]}``, ``leftover_vms[{name, instance_type,
  subnet, tags, finishes_after_seconds}]``, ``dlc_volumes[{size_gb, az, tags}]``), ``object_storage``
  (``bucket{name, versioning}``, ``iam_role{name, arn, trust_subject}``).
- ``gcp`` (cloud gcp): ``project``, ``project_number``, ``region``, ``zone``, ``network``,
  ``subnetwork``, ``nomad_clients`` (``mig{name, zone, base_instance_name, target_size, target_pools,
  auto_healing}``, ``instance_template{name, machine_type, source_image, disk_type, disk_size_gb,
  network, subnetwork, tags, labels, metadata}``), ``vm_service`` (``service_account{email, roles,
  iam_policy}``, ``firewall_rules``, ``leftover_vms``), ``object_storage`` (``bucket{name, versioning}``,
  ``service_account{email, workload_identity_member}``).

IDs that a cloud stand-in assigns itself (EC2 VPC, subnets, security groups, AMI) are *declared* in
``scenario.yaml`` and used in the values file; the seeder maps each declared id to the real one and
passes the mapping to ``write_values_file(..., ids=...)``. ``declared_ids(scenario)`` lists them.
``release_steps(scenario)`` lists the helm install/upgrades that seed the release.
"""
from __future__ import annotations

import copy
import io
import os

from ruamel.yaml import YAML

from .. import yaml_c

SCENARIOS_DIR = os.path.dirname(os.path.abspath(__file__))
PATH_FIELDS = (("helm", "values_file"), ("helm", "migrated_values_file"), ("install", "terraform_outputs"))


def scenario_names() -> list[str]:
    """The names of the scenarios (folders with a scenario.yaml, not starting with ``_``), sorted."""
    return sorted(name for name in os.listdir(SCENARIOS_DIR)
                  if not name.startswith(("_", ".")) and os.path.isfile(os.path.join(SCENARIOS_DIR, name, "scenario.yaml")))


def deep_merge(base, override):
    """``override`` over ``base``: mappings merge, anything else replaces, ``None`` deletes the key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read(name: str) -> dict:
    path = os.path.join(SCENARIOS_DIR, name, "scenario.yaml")
    if not os.path.isfile(path):
        raise KeyError("no lab scenario %r (known: %s)" % (name, ", ".join(scenario_names())))
    with open(path, encoding="utf-8") as handle:
        data = yaml_c.safe_load(handle) or {}
    for section, key in PATH_FIELDS:
        value = (data.get(section) or {}).get(key)
        if value:
            data[section][key] = os.path.join(SCENARIOS_DIR, name, value)
    return data


def load_scenario(name: str) -> dict:
    """The scenario ``name`` merged over its base chain, with absolute paths. KeyError if unknown."""
    chain, seen = [], set()
    current = name
    while current:
        if current in seen:
            raise ValueError("scenario %r: base chain loops through %r" % (name, current))
        seen.add(current)
        data = _read(current)
        chain.insert(0, (current, data))
        current = data.get("base")
    merged: dict = {}
    for _name, data in chain:
        merged = deep_merge(merged, data)
    merged.update(name=name, dir=os.path.join(SCENARIOS_DIR, name), chain=[n for n, _d in chain])
    merged["base"] = chain[-1][1].get("base")
    for section, key in PATH_FIELDS:
        path = (merged.get(section) or {}).get(key)
        if path and not os.path.isfile(path):
            raise FileNotFoundError("scenario %r: %s.%s %s does not exist" % (name, section, key, path))
    return merged


def _apply(node, overrides: dict) -> None:
    """Apply ``overrides`` to a ruamel mapping in place (comments of untouched keys survive)."""
    for key, value in overrides.items():
        if value is None:
            if key in node:
                del node[key]
        elif isinstance(value, dict) and isinstance(node.get(key), dict):
            _apply(node[key], value)
        else:
            node[key] = copy.deepcopy(value)


def render_values(scenario: dict, ids: dict | None = None, extra_overrides: dict | None = None) -> str:
    """The text of the operator's values file for ``scenario``: ``values_file`` with the scenario's
    ``values_overrides`` (then ``extra_overrides``, e.g. a history entry's) applied, comments kept,
    and every declared id replaced by ``ids[declared]``."""
    with open(scenario["helm"]["values_file"], encoding="utf-8") as handle:
        text = handle.read()
    overrides = deep_merge(scenario["helm"].get("values_overrides") or {}, extra_overrides or {})
    if overrides:
        rt = YAML()
        rt.preserve_quotes = True
        rt.width = 4096
        rt.indent(mapping=2, sequence=4, offset=2)
        document = rt.load(text)
        _apply(document, overrides)
        out = io.StringIO()
        rt.dump(document, out)
        text = out.getvalue()
    for declared, real in (ids or {}).items():
        text = text.replace(declared, real)
    return text


def write_values_file(scenario: dict, dest: str, ids: dict | None = None, extra_overrides: dict | None = None) -> str:
    """Write ``render_values(...)`` to ``dest`` (mode 0600, it holds secrets) and return ``dest``."""
    text = render_values(scenario, ids=ids, extra_overrides=extra_overrides)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(dest, 0o600)
    return dest


def values(scenario: dict, extra_overrides: dict | None = None) -> dict:
    """The operator's values as data (what helm receives with ``-f``)."""
    return yaml_c.safe_load(render_values(scenario, extra_overrides=extra_overrides)) or {}


def release_steps(scenario: dict) -> list[dict]:
    """The helm operations that seed the release, in order: ``[{version, extra_overrides, revision}]``.

    The first is a ``helm install``, the others ``helm upgrade``; each uses
    ``write_values_file(scenario, dest, ids, extra_overrides=step["extra_overrides"])``.
    """
    steps = [{"version": str(entry["version"]), "extra_overrides": entry.get("values_overrides") or {}}
             for entry in scenario["helm"].get("history") or []]
    steps.append({"version": str(scenario["server_version"]), "extra_overrides": {}})
    for revision, step in enumerate(steps, start=1):
        step["revision"] = revision
    return steps


def declared_ids(scenario: dict) -> dict[str, str]:
    """Where each cloud-assigned id is declared (dotted path -> declared id), for the seeder to map."""
    found: dict[str, str] = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "id" and isinstance(value, str):
                    found[path] = value
                else:
                    walk(value, "%s.%s" % (path, key) if path else key)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, "%s[%d]" % (path, index))

    walk(scenario.get("aws") or {}, "aws")
    return found
