"""The values.schema.json of each minor of the lab's stand-in circleci-server chart.

Built from the documented values tables (REF-4.2, REF-4.3 in ``server-4x-docs.md`` section 5 and the
``values-4.x.tsv`` files): the top level allows exactly the documented keys (``additionalProperties:
false``), so an unmigrated 4.2 values file fails ``helm upgrade`` to 4.3 with an error that names
``vm_service``; the provider objects allow exactly their documented keys, so 4.3 rejects the 4.2 list
form of EC2 ``tags`` and the GCP ``zone`` string, and 4.2 rejects ``machine_provisioner``.

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
TOP_LEVEL = {
    "4.2": COMMON_TOP_LEVEL + (
        "dispatcher", "internal_zone", "output_processor", "prometheus", "vm_gc", "vm_scaler", "vm_service",
    ),
    "4.3": COMMON_TOP_LEVEL + (
        "docker_provisioner", "execution_gateway", "feature_flags_api", "machine_provisioner", "oidc_service",
        "oidc_tasks_service", "output", "runner_admin", "step", "web_ui_runners",
        # Keys 4.3 stops reading but tolerates: helm_values_migrate reports them and leaves them in place
        # (nothing lost); only vm_service, whose content moves to machine_provisioner, must be gone.
        "internal_zone", "prometheus", "vm_scaler",
    ),
}

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


def values_schema(minor: str) -> dict:
    """The JSON schema of the values of a chart of server ``minor`` ("4.2" or "4.3")."""
    if minor not in TOP_LEVEL:
        raise ValueError("no stand-in chart for server minor %r (known: %s)" % (minor, ", ".join(sorted(TOP_LEVEL))))
    properties = {key: {} for key in TOP_LEVEL[minor]}
    for key in properties:
        if key.endswith(("_service", "_consumer", "_grpc", "_internal", "_external")) or key.startswith("web_ui"):
            properties[key] = {"type": "object", "properties": {"replicas": REPLICAS}}
    properties.update({
        "global": {
            "type": "object", "required": ["domainName"],
            "properties": {
                "domainName": {"type": "string", "minLength": 1,
                               "description": "Domain name of your CircleCI install (required)"},
                "license": STRING, "scheme": {"enum": ["http", "https"]},
                "container": {"type": "object", "properties": {"registry": STRING, "org": STRING}},
                "imagePullSecrets": {"type": "array"},
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
    })
    if minor == "4.2":
        properties["vm_service"] = _provisioner(minor)
        properties["vm_scaler"] = {"type": "object", "properties": {
            "replicas": REPLICAS, "prescaled": {"type": "array", "items": OBJECT}}}
        properties["internal_zone"] = STRING
    else:
        properties["machine_provisioner"] = _provisioner(minor)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "circleci-server %s values (lab stand-in)" % minor,
        "type": "object",
        "required": ["global"],
        "additionalProperties": False,
        "properties": properties,
    }
