# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Nomad HTTP API connection options of the circleci.server modules that talk to Nomad.

The environment variables are the Nomad CLI's (NOMAD_ADDR, NOMAD_TOKEN, ...), so a shell that can run
``nomad node status`` gives the module the same connection. The matching argument spec is
nomad_argspec() in plugins/module_utils/nomad.py.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  nomad_address:
    description:
      - The URL of the Nomad HTTP API, for example V(https://nomad-server.example.com:4646).
      - In CircleCI Server 4.x the Nomad servers run in the cluster; reach them through a port-forward of the
        C(nomad-server) service (port 4646), or through the external servers' load balancer (4.8 and later).
      - Can also be set with the E(NOMAD_ADDR) environment variable.
    type: str
    required: true
  nomad_token:
    description:
      - A Nomad ACL token with C(node:write), needed when ACLs are enabled.
      - Can also be set with the E(NOMAD_TOKEN) environment variable. Never returned or logged.
    type: str
  nomad_region:
    description:
      - The Nomad region to address. Defaults to the agent's own region.
      - Can also be set with the E(NOMAD_REGION) environment variable.
    type: str
  nomad_ca_cert:
    description:
      - Path to the CA bundle that signed the Nomad HTTPS certificate (server-terraform's C(nomad_tls_ca_base64), decoded).
      - Can also be set with the E(NOMAD_CACERT) environment variable.
    type: path
  nomad_client_cert:
    description:
      - Path to a client certificate for Nomad mTLS. Requires O(nomad_client_key).
      - Can also be set with the E(NOMAD_CLIENT_CERT) environment variable.
    type: path
  nomad_client_key:
    description:
      - Path to the private key of O(nomad_client_cert).
      - Can also be set with the E(NOMAD_CLIENT_KEY) environment variable.
    type: path
  nomad_validate_certs:
    description:
      - Whether to verify the Nomad server's TLS certificate. Only turn off in a lab.
    type: bool
    default: true
  nomad_timeout:
    description:
      - Seconds one Nomad API call may take, retries of connection errors and 5xx answers included. An address that
        accepts connections and never answers fails after this long.
    type: float
    default: 30
"""
