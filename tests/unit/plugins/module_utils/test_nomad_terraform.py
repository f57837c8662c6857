# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Nomad clients' Terraform root module and the mapping of recorded outputs into Helm values."""
from __future__ import annotations

import base64
import json
import os

import pytest

from ansible_collections.circleci.server.plugins.module_utils import nomad_terraform as nt

LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "scenarios")
AWS_INPUTS = {"aws_region": "us-east-1", "nomad_server_hostname": "circleci.example.com", "basename": "cci",
              "vpc_id": "vpc-1", "subnets": ["subnet-1"], "dns_server": "10.0.0.2", "blocked_cidrs": [], "nodes": 3}


def test_tag_follows_the_server_minor():
    assert nt.module_tag("4.10.0") == "4.10.0" and nt.module_tag("v4.3.9") == "4.3.0"
    with pytest.raises(nt.TerraformInputError):
        nt.module_tag("4.3")


def test_render_pins_the_module_and_passes_every_input():
    files = nt.render("aws", "4.10.0", AWS_INPUTS)
    main = files["main.tf"]
    assert 'source = "git::https://github.com/CircleCI-Public/server-terraform.git//nomad-aws?ref=4.10.0"' in main
    for name in AWS_INPUTS:
        assert "  %s = var.%s\n" % (name, name) in main and 'variable "%s" {' % name in files["variables.tf"]
    assert json.loads(files["terraform.tfvars.json"]) == AWS_INPUTS
    assert 'output "nomad"' in files["outputs.tf"] and "sensitive = true" in files["outputs.tf"]
    assert nt.render("aws", "4.10.0", dict(reversed(list(AWS_INPUTS.items())))) == files   # deterministic
    gcp = nt.render("gcp", "4.8.0", {"zone": "z", "region": "r", "nomad_server_hostname": "h", "project_id": "p"},
                    backend={"type": "gcs", "bucket": "tf-state", "prefix": "nomad"})
    assert "google-beta = google-beta" in gcp["main.tf"] and 'backend "gcs" {' in gcp["main.tf"]


def test_required_inputs_by_tag():
    assert nt.missing_inputs("aws", "4.10.0", AWS_INPUTS) == []
    missing = nt.missing_inputs("aws", "4.10.0", {"nomad_server_hostname": "h:4647"})
    assert any("vpc_id" in m for m in missing) and any("must not carry a port" in m for m in missing)
    assert any("subnet (one id) or subnets" in m for m in missing)
    # the 4.0.0 module takes server_endpoint (host:port), as migrate-3-to-4 renders it
    old = dict(AWS_INPUTS, server_endpoint="circleci.example.com:4647")
    del old["nomad_server_hostname"], old["aws_region"]
    assert nt.missing_inputs("aws", "4.0.0", old) == []
    assert any("not server_endpoint" in m for m in nt.missing_inputs("aws", "4.10.0", dict(AWS_INPUTS, server_endpoint="x")))
    with pytest.raises(nt.TerraformInputError):
        nt.render("azure", "4.10.0", {})
    with pytest.raises(nt.TerraformInputError):
        nt.render("aws", "4.10.0", {"bad name": 1})


def test_recorded_aws_outputs_into_values():
    with open(os.path.join(LAB, "aws-empty", "nomad-aws-outputs.json"), encoding="utf-8") as handle:
        outputs = nt.read_outputs(handle.read())
    values = nt.outputs_to_values("aws", outputs, region="us-east-1", scaling={"min": 1, "max": 5})
    mtls = values["nomad"]["server"]["rpc"]["mTLS"]
    assert mtls["enabled"] is True and base64.b64decode(mtls["certificate"]).startswith(b"-----BEGIN CERTIFICATE")
    assert base64.b64decode(mtls["privateKey"]).startswith(b"-----BEGIN PRIVATE KEY")
    assert "clients" not in values["nomad"]            # internal servers: no client certificate
    scaler = values["nomad"]["auto_scaler"]
    assert scaler["aws"] == {"enabled": True, "region": "us-east-1", "autoScalingGroup": outputs["nomad_asg_name"],
                             "irsaRole": outputs["nomad_role"]}
    assert scaler["scaling"] == {"min": 1, "max": 5}


def test_recorded_gcp_outputs_nested_under_the_module_output():
    with open(os.path.join(LAB, "gcp-empty", "nomad-gcp-outputs.json"), encoding="utf-8") as handle:
        flat = json.load(handle)
    nested = json.dumps({"nomad": {"sensitive": True, "type": "object", "value": {k: v["value"] for k, v in flat.items()}}})
    values = nt.outputs_to_values("gcp", nt.read_outputs(nested), project_id="acme")
    assert values["nomad"]["server"]["rpc"]["mTLS"]["certificate"] == flat["nomad_server_tls_cert_base64"]["value"]
    assert values["nomad"]["auto_scaler"]["gcp"] == {
        "enabled": True, "project_id": "acme", "mig_name": "nomad-nomad-client-group", "zone": "us-east1-b",
        "workloadIdentity": "nomad-autoscaler@acme-circleci-install.iam.gserviceaccount.com"}


def test_raw_pem_outputs_of_old_modules_are_encoded_and_bad_outputs_refused():
    values = nt.outputs_to_values("aws", {"nomad_server_cert": "-----BEGIN CERTIFICATE-----x", "nomad_server_key": "k",
                                          "nomad_tls_ca": "ca"})
    assert base64.b64decode(values["nomad"]["server"]["rpc"]["mTLS"]["certificate"]).startswith(b"-----BEGIN")
    with pytest.raises(nt.TerraformInputError, match="lack the Nomad mTLS"):
        nt.outputs_to_values("aws", {"nomad_sg_id": "sg-1"})
    with pytest.raises(nt.TerraformInputError, match="not JSON"):
        nt.read_outputs("Error: no state")


def test_commands_quote_the_paths():
    assert nt.commands("/srv/tf dir", "/srv/tf dir/outputs.json") == (
        "cd '/srv/tf dir' && terraform init && terraform apply && (umask 077 && terraform output -json > "
        "'/srv/tf dir/outputs.json')")
