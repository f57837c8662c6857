#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nomad_terraform_files
short_description: Write the Terraform root module of CircleCI Server's Nomad clients; read its outputs back
version_added: 0.1.0
description:
  - Writes, in O(dest), a Terraform root module that calls CircleCI-Public/server-terraform's C(nomad-aws) or
    C(nomad-gcp) module pinned to the tag that matches the server version (C(main.tf), C(variables.tf),
    C(outputs.tf)), and its inputs (C(terraform.tfvars.json), mode 0600).
  - With O(outputs_file) (the text of C(terraform output -json)), also returns the Helm values those outputs
    feed (Nomad mTLS certificates and key, Nomad autoscaler), secret.
  - Exists because the server-terraform modules are the supported way to make Nomad clients (their startup
    script and certificates move with each release), and no Ansible module writes a root module for them.
    M(community.general.terraform) applies what this writes.
author:
  - circleci.server maintainers (@circleci-server-ansible)
attributes:
  check_mode:
    support: full
    description: Reports what it would write, writes nothing.
  diff_mode:
    support: full
    description: Shows each file's change (C(terraform.tfvars.json) masked when an input looks secret).
options:
  dest:
    description: The directory of the root module (created, mode 0700).
    type: path
    required: true
  cloud:
    description: V(aws) (C(nomad-aws)) or V(gcp) (C(nomad-gcp)).
    type: str
    required: true
    choices: [aws, gcp]
  server_version:
    description: The CircleCI Server version; the module is pinned to tag C(<major>.<minor>.0). Or give O(tag).
    type: str
  tag:
    description: The server-terraform tag to pin, overriding O(server_version).
    type: str
  variables:
    description:
      - The module's inputs by their own names (for example C(nomad_server_hostname), C(vpc_id), C(subnets),
        C(dns_server), C(blocked_cidrs), C(nodes), C(basename), C(aws_region); C(zone), C(region), C(project_id)
        on GCP; C(server_endpoint) for the 4.0.0 module).
      - Not secret (the modules take ids and names); they are echoed in the module's invocation.
    type: dict
    default: {}
  backend:
    description: "A Terraform backend block: C(type) (for example V(s3)) and its settings (bucket, key, region...)."
    type: dict
  outputs_file:
    description: A C(terraform output -json) file of this root module; its values are returned in RV(helm_values).
    type: path
  region:
    description: The region the autoscaler values name (AWS region, or the GCP region of a regional group).
    type: str
  project_id:
    description: The GCP project the autoscaler values name.
    type: str
  scaling:
    description: C(nomad.auto_scaler.scaling) values (min, max...), passed through.
    type: dict
notes:
  - Register the result with C(no_log) when O(outputs_file) is given; RV(helm_values) holds private keys.
"""

EXAMPLES = r"""
- name: Write the Nomad clients' root module
  circleci.server.nomad_terraform_files:
    dest: /srv/circleci/nomad-terraform
    cloud: aws
    server_version: 4.10.0
    variables:
      aws_region: us-east-1
      nomad_server_hostname: circleci.example.com
      basename: circleci
      vpc_id: vpc-0123456789abcdef0
      subnets: [subnet-0123456789abcdef0]
      dns_server: 10.0.0.2
      blocked_cidrs: []
      nodes: 4
  register: nomad_tf

- name: Read the outputs back into values
  circleci.server.nomad_terraform_files:
    dest: /srv/circleci/nomad-terraform
    cloud: aws
    server_version: 4.10.0
    variables: "{{ nomad_inputs }}"
    outputs_file: /srv/circleci/nomad-terraform/outputs.json
    region: us-east-1
  register: nomad_tf
  no_log: true
"""

RETURN = r"""
tag:
  description: The server-terraform tag pinned.
  returned: success
  type: str
  sample: 4.10.0
files:
  description: The files of the root module, absolute paths.
  returned: success
  type: list
  elements: str
missing:
  description: Sentences for each input the pinned module requires and O(variables) lacks (the files are written anyway).
  returned: success
  type: list
  elements: str
command:
  description: The shell commands that apply the root module and write its outputs file.
  returned: success
  type: str
helm_values:
  description: The Helm values the outputs feed (only with O(outputs_file)). Secret.
  returned: when outputs_file is given
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.circleci.server.plugins.module_utils.nomad_terraform import (
    TerraformInputError,
    commands,
    missing_inputs,
    module_tag,
    outputs_to_values,
    read_outputs,
    render,
)

SECRET_FILES = ("terraform.tfvars.json",)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _write(module, path, text, mode):
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    module.atomic_move(tmp, path)
    os.chmod(path, mode)  # atomic_move gives a new file the default mode


def main():
    module = AnsibleModule(argument_spec=dict(
        dest=dict(type="path", required=True),
        cloud=dict(type="str", required=True, choices=["aws", "gcp"]),
        server_version=dict(type="str"),
        tag=dict(type="str"),
        variables=dict(type="dict", default={}),
        backend=dict(type="dict"),
        outputs_file=dict(type="path"),
        region=dict(type="str"),
        project_id=dict(type="str"),
        scaling=dict(type="dict"),
    ), required_one_of=[("server_version", "tag")], supports_check_mode=True)
    params = module.params
    try:
        tag = params["tag"] or module_tag(params["server_version"])
        files = render(params["cloud"], tag, params["variables"], backend=params["backend"])
        missing = missing_inputs(params["cloud"], tag, params["variables"])
    except TerraformInputError as exc:
        module.fail_json(msg=str(exc))
    dest = params["dest"]
    changed, diffs = False, []
    for name in sorted(files):
        path = os.path.join(dest, name)
        before = _read(path)
        if before == files[name]:
            continue
        changed = True
        secret = name in SECRET_FILES
        diffs.append({"before_header": path, "after_header": path,
                      "before": "(masked)\n" if secret and before else (before or ""),
                      "after": "(masked)\n" if secret else files[name]})
        if not module.check_mode:
            if not os.path.isdir(dest):
                os.makedirs(dest, mode=0o700)
            _write(module, path, files[name], 0o600 if secret else 0o644)
    outputs_file = params["outputs_file"] or os.path.join(dest, "outputs.json")
    result = dict(changed=changed, tag=tag, files=[os.path.join(dest, n) for n in sorted(files)], missing=missing,
                  command=commands(dest, outputs_file))
    if module._diff and diffs:
        result["diff"] = diffs
    if params["outputs_file"]:
        text = _read(params["outputs_file"])
        if text is None:
            module.fail_json(msg="The Terraform outputs file %s cannot be read: run %s" % (
                params["outputs_file"], result["command"]), **result)
        try:
            result["helm_values"] = outputs_to_values(params["cloud"], read_outputs(text), region=params["region"],
                                                      project_id=params["project_id"], scaling=params["scaling"])
        except TerraformInputError as exc:
            module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
