# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes connection options every circleci.server module that reads a cluster takes.

The option names, aliases and K8S_AUTH_* environment variables are kubernetes.core's, so a play can
pass the same variables to kubernetes.core.k8s_info and to this collection's modules. The argument spec
that matches this fragment is K8S_AUTH_ARGSPEC in plugins/module_utils/k8s.py.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a Kubernetes config file, or the config itself as a dictionary.
      - When neither O(kubeconfig) nor O(host) is given, the client loads C(~/.kube/config) (or the files in
        E(KUBECONFIG)) and, failing that, the in-cluster service account.
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The name of a context in the config file. Defaults to the file's current context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - The URL of the Kubernetes API server, for example V(https://10.0.0.1:6443). Overrides the config file's.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - A bearer token for the API server. Overrides the config file's credentials.
      - Can also be set with the E(K8S_AUTH_API_KEY) environment variable.
      - Never returned or logged.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Overrides the config file's setting.
      - Can also be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to the CA certificate (the full chain) that signed the API server's certificate.
      - Can also be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate to authenticate with.
      - Can also be set with the E(K8S_AUTH_CERT_FILE) environment variable.
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the key of O(client_cert).
      - Can also be set with the E(K8S_AUTH_KEY_FILE) environment variable.
    type: path
    aliases: [key_file]
  proxy:
    description:
      - The URL of an HTTP proxy to reach the API server through. E(HTTPS_PROXY) is not read.
      - Can also be set with the E(K8S_AUTH_PROXY) environment variable.
    type: str
  no_proxy:
    description:
      - Comma-separated hosts, domains and CIDRs that bypass O(proxy).
      - Can also be set with the E(K8S_AUTH_NO_PROXY) environment variable.
    type: str
  impersonate_user:
    description:
      - A user to impersonate for every request.
      - Can also be set with the E(K8S_AUTH_IMPERSONATE_USER) environment variable.
    type: str
  request_timeout:
    description:
      - Seconds one Kubernetes API request may take, its connection retries included (a refused connection is
        retried twice within it; a request the server received and did not answer is not retried).
      - A cluster that accepts connections and never answers fails the task after this long, with a message
        naming the API server. Raise it for a slow API server; more than 0, at most 3600.
      - Can also be set with the E(CIRCLECI_SERVER_K8S_REQUEST_TIMEOUT) environment variable.
    type: float
    default: 20
requirements:
  - kubernetes (the Python client) >= 24.2.0
notes:
  - The options mirror kubernetes.core's, so the same variables serve both collections.
"""
