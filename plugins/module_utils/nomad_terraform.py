# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Terraform root module for CircleCI's Nomad clients, and its outputs read back into Helm values.

Plain Python, no Ansible; the ``nomad_terraform_files`` module and the ``nomad_terraform`` role call it,
and so may any other playbook (migrate-3-to-4 renders the 4.0 module with ``server_endpoint``).

Interface (install-4x.md section 4; server-4x-docs.md section 6):

``module_tag(server_version)``
    The CircleCI-Public/server-terraform tag that matches a server version: ``<major>.<minor>.0``.
``render(cloud, tag, variables, backend=None, providers=None)``
    ``{file name: text}`` of the root module: ``main.tf`` (terraform block with the providers, the provider
    block, one ``module "nomad"`` pinned to ``git::https://github.com/CircleCI-Public/server-terraform.git//
    nomad-<cloud>?ref=<tag>`` whose inputs are ``var.<name>`` for every key of ``variables``),
    ``variables.tf`` (one ``variable`` per key, sensitive when its name says so), ``outputs.tf`` (the whole
    module object as one sensitive output ``nomad``: a pinned module's output set varies with its tag, and
    a missing attribute would fail ``terraform validate``) and ``terraform.tfvars.json`` (``variables``).
    ``cloud`` is ``aws`` or ``gcp``; ``variables`` are the module's own input names (``nomad_server_hostname``
    from 4.1.0, ``server_endpoint`` "host:4647" in 4.0.0: ``required_inputs`` says which).
``required_inputs(cloud, tag)``
    The inputs the module of that tag requires (a ``subnet`` or ``subnets`` pair is reported as "subnets").
``missing_inputs(cloud, tag, variables)``
    Sentences for each required input absent from ``variables``.
``read_outputs(text)``
    ``{output name: value}`` from ``terraform output -json``: flat (one output per module output) or the
    whole module under one output (``nomad`` or ``nomad_module``, as the examples do).
``outputs_to_values(cloud, outputs)``
    The Helm values subtree the outputs feed: ``nomad.server.rpc.mTLS`` (base64 PEM as the chart wants;
    raw PEM outputs of the 4.0-4.7 modules are encoded), ``nomad.clients.mTLS`` (external servers only) and
    ``nomad.auto_scaler`` (AWS ASG + IRSA role or keys; GCP MIG + Workload Identity or key). Secret: the
    private keys are in it.
``commands(directory, outputs_file)``
    The exact shell commands that apply the root module and record its outputs.
"""

from __future__ import annotations

import base64
import json
import re

SOURCE = "git::https://github.com/CircleCI-Public/server-terraform.git//nomad-%s?ref=%s"
PROVIDERS = {
    "aws": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0"},
            "cloudinit": {"source": "hashicorp/cloudinit", "version": ">= 2.3"}},
    "gcp": {"google-beta": {"source": "hashicorp/google-beta", "version": "~> 5.0"}},
}
REQUIRED_VERSION = ">= 1.1.9"
_SENSITIVE_NAME = re.compile(r"(key|secret|password|token|credential)", re.IGNORECASE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_TAG = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class TerraformInputError(ValueError):
    """The inputs cannot make a root module; the message says what to fix."""


def module_tag(server_version):
    match = re.match(r"^v?(\d+)\.(\d+)\.\d+$", str(server_version).strip())
    if not match:
        raise TerraformInputError("%r is not a CircleCI Server version (for example 4.10.0)." % (server_version,))
    return "%s.%s.0" % match.groups()


def _tag_tuple(tag):
    match = _TAG.match(str(tag))
    if not match:
        raise TerraformInputError("server-terraform tag %r is not MAJOR.MINOR.PATCH (for example 4.10.0)." % (tag,))
    return tuple(int(part) for part in match.groups())


def required_inputs(cloud, tag):
    endpoint = "server_endpoint" if _tag_tuple(tag) < (4, 1, 0) else "nomad_server_hostname"
    if cloud == "aws":
        required = [endpoint, "blocked_cidrs", "dns_server", "nodes", "basename", "vpc_id", "subnets"]
        if _tag_tuple(tag) >= (4, 8, 0):
            required.insert(0, "aws_region")
        return required
    if cloud == "gcp":
        return ["zone", "region", endpoint]
    raise TerraformInputError("cloud %r: the server-terraform Nomad modules are nomad-aws and nomad-gcp." % (cloud,))


def missing_inputs(cloud, tag, variables):
    missing = []
    for name in required_inputs(cloud, tag):
        if name == "subnets":
            if variables.get("subnets") in (None, "", []) and variables.get("subnet") in (None, ""):
                missing.append("nomad-%s %s needs subnet (one id) or subnets (a list of ids)." % (cloud, tag))
        elif variables.get(name) in (None, ""):
            missing.append("nomad-%s %s needs the input %s." % (cloud, tag, name))
    if "server_endpoint" in variables and _tag_tuple(tag) >= (4, 1, 0):
        missing.append("nomad-%s %s takes nomad_server_hostname (the domain, no port), not server_endpoint." % (
            cloud, tag))
    hostname = str(variables.get("nomad_server_hostname") or "")
    if ":" in hostname:
        missing.append("nomad_server_hostname %s must not carry a port (nomad_server_port sets it)." % hostname)
    return missing


def hcl_string(value):
    return json.dumps(str(value))


def render(cloud, tag, variables, backend=None, providers=None):
    """The root module's files, ``{name: text}``, deterministic for the same inputs."""
    if cloud not in PROVIDERS:
        raise TerraformInputError("cloud %r: choose aws or gcp." % (cloud,))
    _tag_tuple(tag)
    names = sorted(variables)
    for name in names:
        if not _IDENTIFIER.match(name):
            raise TerraformInputError("%r is not a Terraform input name." % (name,))
    providers = providers or PROVIDERS[cloud]
    lines = ["# Written by the circleci.server collection (role nomad_terraform): the Nomad clients of CircleCI Server,",
             "# server-terraform nomad-%s pinned to tag %s. Edit terraform.tfvars.json, not this file." % (cloud, tag),
             "terraform {",
             "  required_version = %s" % hcl_string(REQUIRED_VERSION),
             "  required_providers {"]
    for name in sorted(providers):
        lines.append("    %s = {" % name)
        lines.append("      source  = %s" % hcl_string(providers[name]["source"]))
        lines.append("      version = %s" % hcl_string(providers[name]["version"]))
        lines.append("    }")
    lines.append("  }")
    if backend:
        lines.append("  backend %s {" % hcl_string(backend.get("type", "local")))
        for key in sorted(k for k in backend if k != "type"):
            lines.append("    %s = %s" % (key, hcl_string(backend[key])))
        lines.append("  }")
    lines.append("}")
    lines.append("")
    if cloud == "aws":
        region = "aws_region" if "aws_region" in variables else None
        lines += ["provider \"aws\" {"] + (["  region = var.%s" % region] if region else []) + ["}", ""]
    else:
        lines += ["provider \"google-beta\" {"]
        if "project_id" in variables:
            lines.append("  project = var.project_id")
        lines += ["  region  = var.region", "  zone    = var.zone", "}", ""]
    lines.append("module \"nomad\" {")
    lines.append("  source = %s" % hcl_string(SOURCE % (cloud, tag)))
    if cloud == "gcp":
        lines.append("  providers = {")
        lines.append("    google-beta = google-beta")
        lines.append("  }")
    for name in names:
        lines.append("  %s = var.%s" % (name, name))
    lines.append("}")
    main = "\n".join(lines) + "\n"

    declarations = []
    for name in names:
        declarations.append("variable \"%s\" {" % name)
        declarations.append("  type = any")
        if _SENSITIVE_NAME.search(name):
            declarations.append("  sensitive = true")
        declarations.append("}")
        declarations.append("")
    outputs = ("# The whole module as one output: a pinned tag's output set varies, and terraform output -json\n"
               "# prints it in full (private keys included: keep that file 0600).\n"
               "output \"nomad\" {\n  value     = module.nomad\n  sensitive = true\n}\n")
    return {
        "main.tf": main,
        "variables.tf": "\n".join(declarations),
        "outputs.tf": outputs,
        "terraform.tfvars.json": json.dumps({name: variables[name] for name in names}, indent=2, sort_keys=True) + "\n",
    }


def read_outputs(text):
    """{name: value} from ``terraform output -json`` text (flat, or nested under ``nomad``/``nomad_module``)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TerraformInputError("The Terraform outputs file is not JSON (%s): write it with "
                                  "`terraform output -json > outputs.json`." % exc.__class__.__name__)
    if not isinstance(doc, dict):
        raise TerraformInputError("The Terraform outputs file is not a JSON object: write it with "
                                  "`terraform output -json > outputs.json`.")
    values = {name: (entry.get("value") if isinstance(entry, dict) and "value" in entry else entry)
              for name, entry in doc.items()}
    for wrapper in ("nomad", "nomad_module"):
        if isinstance(values.get(wrapper), dict):
            nested = dict(values[wrapper])
            nested.update({k: v for k, v in values.items() if k not in ("nomad", "nomad_module")})
            return nested
    return values


def _b64_pem(outputs, *names):
    """The first non-empty output among ``names``: ``*_base64`` as is, raw PEM encoded."""
    for name in names:
        value = outputs.get(name)
        if value:
            value = str(value)
            return value if name.endswith("_base64") else base64.b64encode(value.encode("utf-8")).decode("ascii")
    return ""


def outputs_to_values(cloud, outputs, region=None, project_id=None, scaling=None):
    """The values subtree the Terraform outputs feed (see the module docstring). Secret."""
    cert = _b64_pem(outputs, "nomad_server_cert_base64", "nomad_server_tls_cert_base64", "nomad_server_cert")
    key = _b64_pem(outputs, "nomad_server_key_base64", "nomad_server_tls_key_base64", "nomad_server_key")
    ca = _b64_pem(outputs, "nomad_tls_ca_base64", "nomad_tls_ca")
    if not (cert and key and ca):
        raise TerraformInputError("The Terraform outputs lack the Nomad mTLS material (nomad_server_cert_base64 or "
                                  "nomad_server_tls_cert_base64, the key, nomad_tls_ca_base64): is it the output of "
                                  "server-terraform nomad-%s?" % cloud)
    values = {"nomad": {"server": {"rpc": {"mTLS": {"enabled": True, "certificate": cert, "privateKey": key,
                                                    "CACertificate": ca}}}}}
    client_cert = _b64_pem(outputs, "nomad_clients_cert_base64")
    client_key = _b64_pem(outputs, "nomad_clients_key_base64")
    if client_cert and client_key:
        values["nomad"]["clients"] = {"mTLS": {"certificate": client_cert, "privateKey": client_key, "CACertificate": ca}}
    scaler = None
    if cloud == "aws" and outputs.get("nomad_asg_name"):
        scaler = {"enabled": True, "region": region or "", "autoScalingGroup": outputs["nomad_asg_name"]}
        if outputs.get("nomad_asg_user_access_key"):
            scaler.update(accessKey=outputs["nomad_asg_user_access_key"], secretKey=outputs.get("nomad_asg_user_secret_key", ""))
        elif outputs.get("nomad_role"):
            scaler["irsaRole"] = outputs["nomad_role"]
        scaler = {"aws": scaler}
    elif cloud == "gcp" and (outputs.get("managed_instance_group_nomad_client") or outputs.get("managed_instance_group_name")):
        gcp = {"enabled": True, "project_id": project_id or "",
               "mig_name": outputs.get("managed_instance_group_nomad_client") or outputs.get("managed_instance_group_name")}
        if outputs.get("managed_instance_group_type") == "regional" or not outputs.get("managed_instance_group_zone"):
            gcp["region"] = outputs.get("managed_instance_group_region") or region or ""
        else:
            gcp["zone"] = outputs["managed_instance_group_zone"]
        if outputs.get("service_account_key"):
            gcp["service_account"] = json.loads(outputs["service_account_key"]) if str(
                outputs["service_account_key"]).strip().startswith("{") else outputs["service_account_key"]
        elif outputs.get("service_account_email"):
            gcp["workloadIdentity"] = outputs["service_account_email"]
        scaler = {"gcp": gcp}
    if scaler:
        scaler["enabled"] = True
        if scaling:
            scaler["scaling"] = dict(scaling)
        values["nomad"]["auto_scaler"] = scaler
    return values


def commands(directory, outputs_file):
    """The commands an operator runs where Terraform is allowed, then hands back ``outputs_file``."""
    return ("cd %s && terraform init && terraform apply && (umask 077 && terraform output -json > %s)" % (
        _shell_quote(directory), _shell_quote(outputs_file)))


def _shell_quote(text):
    text = str(text)
    if re.match(r"^[\w@%+=:,./-]+$", text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"
