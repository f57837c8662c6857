# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 20's hang cases that need a socket: endpoints that accept connections and never answer, and refused ones.

``Blackhole`` is a local TCP server that accepts every connection and never sends a byte (what a dead proxy,
a half-open load balancer or a wedged API server looks like from the client). ``network_cases(port, closed)``
are ``hostile_inputs.Case`` s whose module points at it (or at a closed port) with ``request_timeout: 2``:
each must fail within the runner's 30 s limit with a message naming the endpoint and the option to raise.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from pathlib import Path

# The collection as Ansible imports it (this checkout, linked under .cache/collections by hacking/setup.sh).
_COLLECTIONS = str(Path(__file__).resolve().parents[3] / ".cache" / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

from ansible_collections.circleci.server.tests.unit.plugins.modules.hostile_inputs import (  # noqa: E402  pylint: disable=wrong-import-position
    ISSUE,
    Case,
)

TIMEOUT = 2


class Blackhole:
    """Accepts TCP connections on 127.0.0.1 and never answers; ``close()`` drops them all."""

    def __init__(self):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.connections = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                connection, _peer = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.server.close()
        for connection in self.connections:
            connection.close()


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def _kubeconfig(tmp, port):
    path = os.path.join(tmp, "kubeconfig")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("apiVersion: v1\nkind: Config\ncurrent-context: hole\n"
                     "clusters:\n- name: hole\n  cluster:\n    server: https://127.0.0.1:%d\n"
                     "    insecure-skip-tls-verify: true\n"
                     "users:\n- name: hole\n  user:\n    token: CANARY-s3cr3t-9f1c\n"
                     "contexts:\n- name: hole\n  context: {cluster: hole, user: hole}\n" % port)
    return path


def network_cases(port, refused):
    hole = "127.0.0.1:%d" % port
    aws = {"region": "us-east-1", "access_key": "AKIDEXAMPLE", "secret_key": "dummy-secret",
           "endpoint_url": "http://%s" % hole, "request_timeout": TIMEOUT}

    def k8s(module, host=True, **extra):
        def build(tmp):
            args = {"namespace": "circleci-server", "request_timeout": TIMEOUT}
            if host:
                args.update(host="https://%s" % hole, api_key="CANARY-s3cr3t-9f1c", validate_certs=False)
            else:
                args["kubeconfig"] = _kubeconfig(tmp, port)
            args.update(extra)
            return args
        return build

    words = (hole, "request_timeout")
    cases = [
        Case("helm_release_diff.kubeconfig->silent-server", "network-hang", "helm_release_diff",
             lambda tmp: {"release_namespace": "circleci-server", "chart_ref": "circleci-server",
                          "kubeconfig": _kubeconfig(tmp, port), "request_timeout": TIMEOUT}, words, origin=ISSUE,
             secret="CANARY-s3cr3t-9f1c"),
        Case("server_release_info.host->silent-server", "network-hang", "server_release_info", k8s("server_release_info"),
             words, origin=ISSUE, secret="CANARY-s3cr3t-9f1c"),
        Case("s3_bucket_versioning.endpoint->silent-server", "network-hang", "s3_bucket_versioning",
             lambda tmp: dict(aws, bucket="circleci-data"), words, origin=ISSUE, real_clients=True),
        Case("gcp_service_account_iam_member.base_url->silent-server", "network-hang",
             "gcp_service_account_iam_member",
             lambda tmp: {"service_account": "vm@p.iam.gserviceaccount.com", "member": "user:a@example.com",
                          "gcp_auth_kind": "none", "gcp_base_url": "http://%s" % hole, "request_timeout": TIMEOUT},
             words, origin=ISSUE),
        Case("server_release_info.kubeconfig->silent-server", "network-hang", "server_release_info",
             k8s("server_release_info", host=False), words, secret="CANARY-s3cr3t-9f1c"),
        Case("tink_migration_status.host->silent-server", "network-hang", "tink_migration_status",
             k8s("tink_migration_status"), words, secret="CANARY-s3cr3t-9f1c"),
        Case("velero_backup_info.host->silent-server", "network-hang", "velero_backup_info",
             k8s("velero_backup_info"), words, secret="CANARY-s3cr3t-9f1c"),
        Case("iam_role_trust_subject.endpoint->silent-server", "network-hang", "iam_role_trust_subject",
             lambda tmp: dict(aws, role_name="circleci-vm", from_subject="system:serviceaccount:a:b",
                              to_subject="system:serviceaccount:a:c"), words, real_clients=True),
        Case("ec2_security_group_rule.endpoint->silent-server", "network-hang", "ec2_security_group_rule",
             lambda tmp: dict(aws, group_id="sg-0123456789abcdef0", from_port=2376, state="absent"), words,
             real_clients=True),
        Case("ec2_tagged_resources_info.endpoint->silent-server", "network-hang", "ec2_tagged_resources_info",
             lambda tmp: dict(aws, tag_value="circleci-vm"), words, real_clients=True),
        Case("server_release_info.host->refused-port", "network-hang", "server_release_info",
             lambda tmp: {"namespace": "circleci-server", "host": "https://127.0.0.1:%d" % refused,
                          "validate_certs": False, "request_timeout": TIMEOUT},
             ("127.0.0.1:%d" % refused, "Could not reach")),
        Case("s3_bucket_versioning.endpoint->refused-port", "network-hang", "s3_bucket_versioning",
             lambda tmp: dict(aws, endpoint_url="http://127.0.0.1:%d" % refused, bucket="circleci-data"),
             ("127.0.0.1:%d" % refused,), real_clients=True),
    ]
    return cases
