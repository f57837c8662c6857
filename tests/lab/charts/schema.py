"""The values.schema.json of each minor of the lab's stand-in circleci-server chart, 4.2 to 4.10.

Built from the documented values tables (REF-4.2 .. REF-4.8, VAL-4.9, VAL-4.10 in ``server-4x-docs.md``
section 5 and the ``values-4.x.tsv`` files): the top level allows exactly the documented keys of that minor
plus the leftovers helm_values_migrate keeps (``additionalProperties: false``), so an unmigrated 4.2 values
file fails ``helm upgrade`` to 4.3 with an error that names ``vm_service``; the provider objects allow exactly
their documented keys, so 4.3 rejects the 4.2 list form of EC2 ``tags`` and the GCP ``zone`` string, and 4.2
rejects ``machine_provisioner``. Each later values hop is enforced the same way: from 4.7 ``imagePullSecrets``
is a list of names and ``machine_agent_base_url`` is refused, from 4.8 ``config_path`` and
``telegraf.config.custom_config_file``, from 4.9 ``global.tracing`` (``RENAMED_AWAY``).

Required, as the docs require: ``global.domainName``. From 4.2 the chart generates the ``api-token``,
``session-cookie``, ``pusher`` and gossip-key secrets when absent, so ``apiToken`` and
``sessionCookieKey`` are allowed (the example manifests still carry ``sessionCookieKey``, exactly 16
characters) but not required. Everything below the top level that the docs do not pin stays open.
"""
from __future__ import annotations

# Top-level keys of the documented values table of every 4.2/4.3 chart (the 4.2 table's stray
# ``GitHub`` row is a doc typo and is left out), plus the keys of the example manifests.
COMMON_TOP_LEVEL = (
    "apiToken", "sessionCookieKey",
    "api_service", "audit_log_service", "branch_service", "builds_service", "contexts_service", "cron_service",
    "distributor", "distributor_cleaner", "distributor_dispatcher", "distributor_external", "distributor_internal",
    "domain_service", "frontend", "github", "global", "insights_service", "keyset", "kong", "legacy_notifier",
    "mongodb", "nginx", "nomad", "object_storage", "orb_service", "permissions_service", "policy_service",
    "policy_service_internal", "postgresql", "proxy", "pusher", "rabbitmq", "redis", "schedulerer",
    "serveUnsafeArtifacts", "smtp", "soketi", "telegraf", "test_results_service", "tink", "tls", "vault",
    "web_ui", "web_ui_404", "web_ui_insights", "web_ui_onboarding", "web_ui_org_settings",
    "web_ui_project_settings", "web_ui_server_admin", "web_ui_user_settings", "webhook_service",
    "workflows_conductor_event_consumer", "workflows_conductor_grpc",
)
DOCUMENTED_42 = COMMON_TOP_LEVEL + (
    "dispatcher", "internal_zone", "output_processor", "prometheus", "vm_gc", "vm_scaler", "vm_service",
)
# Each later minor's documented table as (added, removed) against the one before (values/values-4.X.tsv).
TABLE_CHANGES = {
    "4.3": (("docker_provisioner", "execution_gateway", "feature_flags_api", "machine_provisioner", "oidc_service",
             "oidc_tasks_service", "output", "runner_admin", "step", "web_ui_runners"),
            ("dispatcher", "internal_zone", "output_processor", "prometheus", "vm_gc", "vm_scaler", "vm_service")),
    "4.4": ((), ()),
    "4.5": (("ciam_gateway", "ciam_service", "web_ui_authentication"), ()),
    "4.6": (("authentication_service",), ()),
    "4.7": ((), ("web_ui_404",)),
    "4.8": (("public_api_service",), ("schedulerer", "web_ui_insights", "web_ui_onboarding", "web_ui_org_settings",
                                      "web_ui_project_settings", "web_ui_runners", "web_ui_user_settings")),
    "4.9": (("lock_job_provider", "no_op_job_provider", "opentelemetry-collector"),
            ("feature_flags_api", "web_ui_authentication")),
    "4.10": (("checkout", "notifications"), ("audit_log_service", "telegraf")),
}
MINORS = ("4.2",) + tuple(TABLE_CHANGES)
# Top-level keys a later chart stops reading but tolerates, because helm_values_migrate reports them and
# leaves them in place (nothing lost): 4.2's internal_zone, prometheus, vm_scaler, test_results_service, and from 4.3 on every key
# an earlier 4.3+ table documented. Never tolerated: vm_service (its content moves to machine_provisioner)
# and the 4.2-only workloads dispatcher, output_processor, vm_gc.
TOLERATED_FROM_42 = ("internal_zone", "prometheus", "test_results_service", "vm_scaler")
# Keys renamed by a values hop: from that minor on, the old name is refused where the new one lives, so an
# unmigrated file fails `helm upgrade` naming the key ((parent path), old key).
RENAMED_AWAY = {
    "4.7": ((("machine_provisioner",), "machine_agent_base_url"),),
    "4.8": ((("machine_provisioner",), "config_path"), (("docker_provisioner",), "config_path"),
            (("telegraf", "config"), "custom_config_file")),
    "4.9": ((("global",), "tracing"),),
}


def _minor_key(minor: str) -> tuple:
    return tuple(int(part) for part in minor.split("."))


def documented_top_level(minor: str) -> tuple:
    """The top-level keys of ``minor``'s documented values table (plus the example manifests' keys)."""
    keys = list(DOCUMENTED_42)
    for step in MINORS[1:MINORS.index(minor) + 1]:
        added, removed = TABLE_CHANGES[step]
        keys = [k for k in keys if k not in removed] + [k for k in added if k not in keys]
    return tuple(keys)


def top_level(minor: str) -> tuple:
    """The top-level keys the chart of ``minor`` accepts: its table's, and the tolerated leftovers."""
    keys = list(documented_top_level(minor))
    if minor != "4.2":
        earlier = list(TOLERATED_FROM_42)
        for step in MINORS[1:MINORS.index(minor)]:
            earlier.extend(documented_top_level(step))
        keys.extend(k for k in dict.fromkeys(earlier) if k not in keys)
    return tuple(keys)


TOP_LEVEL = {minor: top_level(minor) for minor in MINORS}

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
STRINGS = {"type": "array", "items": STRING}
OBJECT = {"type": "object"}
REPLICAS = {"type": "integer", "minimum": 0}

EC2_KEYS = {
    "enabled": BOOL, "region": STRING, "subnets": STRINGS, "securityGroupId": STRING, "assignPublicIP": BOOL,
    "irsaRole": STRING, "accessKey": STRING, "secretKey": STRING, "linuxAMI": STRING, "windowsAMI": STRING,
}
GCP_KEYS = {
    "enabled": BOOL, "project_id": STRING, "network": STRING, "subnetwork": STRING, "network_tags": STRINGS,
    "assignPublicIP": BOOL, "linuxImage": STRING, "windowsImage": STRING, "service_account": OBJECT,
    "workloadIdentity": STRING,
}


def _closed(properties: dict, **extra) -> dict:
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    schema.update(extra)
    return schema


def _at_least(minor: str, since: str) -> bool:
    return _minor_key(minor) >= _minor_key(since)


def _providers(minor: str) -> dict:
    if minor == "4.2":
        ec2 = dict(EC2_KEYS, tags={
            "type": "array", "items": STRING,
            "description": "key, value pairs as a flat list: [\"key\", \"value\", \"foo\", \"bar\"]"})
        gcp = dict(GCP_KEYS, zone=STRING)
    else:
        ec2 = dict(EC2_KEYS, tags={"type": "object", "additionalProperties": STRING,
                                   "description": "a map of tag name to value (a list in 4.2)"})
        gcp = dict(GCP_KEYS, region=STRING, zones={"type": "array", "items": STRING, "minItems": 1})
    if _at_least(minor, "4.8"):  # REF-4.8: assumed role, gp3 volume settings
        ec2.update(assumedRoleArn=STRING, iops={"type": "integer"}, throughput={"type": "integer"})
    if _at_least(minor, "4.9"):  # VAL-4.9: "Only IMDSv2 is supported by default"
        ec2.update(allowIMDSv1=BOOL)
    return _closed({"ec2": _closed(ec2), "gcp": _closed(gcp)})


def _provisioner(minor: str) -> dict:
    if minor == "4.2":
        return {"type": "object", "properties": {
            "enabled": BOOL, "replicas": REPLICAS, "dlc_lifespan_days": {"type": "integer", "minimum": 0},
            "providers": _providers(minor)}}
    integer = {"type": "integer", "minimum": 0}
    return {"type": "object", "properties": {
        "enabled": BOOL, "installID": STRING, "dlcDockerDiskSizeGB": integer, "dlcMaxDiskThresholdGB": integer,
        "dlcUnusedLifespanDays": integer, "demandFudgeFactor": {"type": "number"},
        "fudgeScaleFactor": {"type": "number"}, "fudgeConstantTerm": {"type": "number"},
        "providers": _providers(minor)}}


def _image() -> dict:
    return {"type": "object", "properties": {"registry": STRING, "repository": STRING, "tag": STRING}}


def _refuse_renamed(properties: dict, minor: str) -> None:
    """From the minor of each rename on, refuse the old key where the new one lives ("not required")."""
    for since, renames in RENAMED_AWAY.items():
        if not _at_least(minor, since):
            continue
        for parent, old in renames:
            node = properties.setdefault(parent[0], {})
            for key in parent[1:]:
                node = node.setdefault("properties", {}).setdefault(key, {})
            node.setdefault("type", "object")
            node.setdefault("allOf", []).append({
                "not": {"required": [old]},
                "description": "%s.%s is renamed in %s: run helm_values_migrate" % (".".join(parent), old, since)})


def values_schema(minor: str) -> dict:
    """The JSON schema of the values of a chart of server ``minor`` (one of ``MINORS``)."""
    if minor not in TOP_LEVEL:
        raise ValueError("no stand-in chart for server minor %r (known: %s)" % (minor, ", ".join(MINORS)))
    properties = {key: {} for key in TOP_LEVEL[minor]}
    for key in properties:
        if key.endswith(("_service", "_consumer", "_grpc", "_internal", "_external")) or key.startswith("web_ui"):
            properties[key] = {"type": "object", "properties": {"replicas": REPLICAS}}
    # REF-4.0..4.6: imagePullSecrets is [{name: regcred}]; REF-4.7+: a list of names (["regcred"]).
    pull_secret = STRING if _at_least(minor, "4.7") else _closed({"name": STRING}, required=["name"])
    properties.update({
        "global": {
            "type": "object", "required": ["domainName"],
            "properties": {
                "domainName": {"type": "string", "minLength": 1,
                               "description": "Domain name of your CircleCI install (required)"},
                "license": STRING, "scheme": {"enum": ["http", "https"]},
                "container": {"type": "object", "properties": {"registry": STRING, "org": STRING}},
                "imagePullSecrets": {"type": "array", "items": pull_secret},
            },
        },
        "apiToken": STRING,
        "sessionCookieKey": {"type": "string", "pattern": "^(.{16})?$",
                             "description": "exactly 16 characters (empty: generated)"},
        "keyset": {"type": "object", "properties": {"signing": STRING, "encryption": STRING}},
        "tink": {"type": "object", "properties": {"enabled": BOOL, "keyset": STRING}},
        "vault": {"type": "object", "properties": {"internal": BOOL, "url": STRING, "transitPath": STRING,
                                                   "token": STRING, "podAnnotations": OBJECT}},
        "serveUnsafeArtifacts": BOOL,
        "nomad": {"type": "object", "properties": {"server": {"type": "object", "properties": {
            "replicas": REPLICAS}}}},
        "mongodb": {"type": "object", "properties": {"internal": BOOL, "image": _image()}},
        "postgresql": {"type": "object", "properties": {"internal": BOOL, "image": _image()}},
    })
    if minor == "4.2":
        properties["vm_service"] = _provisioner(minor)
        properties["vm_scaler"] = {"type": "object", "properties": {
            "replicas": REPLICAS, "prescaled": {"type": "array", "items": OBJECT}}}
        properties["internal_zone"] = STRING
    else:
        properties["machine_provisioner"] = _provisioner(minor)
    _refuse_renamed(properties, minor)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "circleci-server %s values (lab stand-in)" % minor,
        "type": "object",
        "required": ["global"],
        "additionalProperties": False,
        "properties": properties,
    }
