# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils.k8s: the auth argspec, the client, the reader's requests and the helm release decoding."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible_collections.circleci.server.plugins.module_utils import k8s
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.k8s_fake import (
    FakeReader,
    helm_release_secret,
    secret,
)

NS = "circleci-server"


def test_argspec_matches_kubernetes_core_names_and_hides_secrets():
    spec = k8s.K8S_AUTH_ARGSPEC
    assert {"kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key",
            "proxy", "no_proxy"} <= set(spec)
    assert spec["api_key"]["no_log"] is True and spec["kubeconfig"]["no_log"] is True
    assert spec["validate_certs"]["aliases"] == ["verify_ssl"]
    assert spec["host"]["fallback"][1] == ["K8S_AUTH_HOST"]


def test_client_from_host_and_token_needs_no_kubeconfig():
    client = k8s.api_client_from_params({"host": "https://10.0.0.1:6443", "api_key": "t0ken", "validate_certs": False,
                                         "ca_cert": None, "proxy": "http://proxy:3128"})
    conf = client.configuration
    assert conf.host == "https://10.0.0.1:6443" and conf.verify_ssl is False and conf.proxy == "http://proxy:3128"
    assert conf.api_key == {"authorization": "Bearer t0ken"}


def test_client_from_a_kubeconfig_dict_and_a_bad_one():
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "lab", "user": {"token": "abc"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
    }
    assert k8s.api_client_from_params({"kubeconfig": kubeconfig}).configuration.host == "http://127.0.0.1:1"
    with pytest.raises(k8s.K8sError, match="give kubeconfig"):
        k8s.api_client_from_params({"kubeconfig": kubeconfig, "context": "nope"})
    with pytest.raises(k8s.K8sError, match="kubeconfig .nonexistent.kubeconfig does not exist"):
        k8s.api_client_from_params({"kubeconfig": "/nonexistent/kubeconfig"})


class _Api(BaseHTTPRequestHandler):
    routes = {}
    seen = []

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        self.seen.append((self.command, self.path, self.headers.get("Authorization")))
        path = self.path.split("?")[0].rstrip("/")
        status, body = self.routes.get(path, (404, {"kind": "Status", "code": 404}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture()
def api():
    _Api.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, "http://127.0.0.1:%d" % server.server_port
    server.shutdown()
    server.server_close()


def test_reader_sends_only_gets_to_the_standard_paths(api):
    _server, url = api
    release = helm_release_secret(NS, "circleci-server", 2, "4.2.7", {"tink": {"enabled": True}})
    _Api.routes = {
        "/version": (200, {"gitVersion": "v1.27.9-eks-1", "major": "1", "minor": "27"}),
        "/api/v1/namespaces/%s/secrets" % NS: (200, {"items": [release]}),
        "/api/v1/namespaces/%s/secrets/tink" % NS: (200, secret(NS, "tink", {"keyset": "{}"})),
        "/apis/apps/v1/namespaces/%s/statefulsets/vault" % NS: (403, {"kind": "Status", "code": 403}),
    }
    reader = k8s.K8sReader.from_params({"host": url, "api_key": "t0ken"})
    assert k8s.normalise_kubernetes_version(reader.version()) == "1.27.9"
    assert k8s.helm_release_values(reader, NS, "circleci-server") == {"tink": {"enabled": True}}
    assert k8s.read_secret(reader, NS, "tink") == {"keyset": b"{}"}
    assert reader.get("Pod", "vault-0", NS) is None
    assert reader.list_custom("velero.io", "v1", "backups", "velero") == []
    with pytest.raises(k8s.K8sError, match="refused"):
        reader.get("StatefulSet", "vault", NS)
    methods = {method for method, _path, _auth in _Api.seen}
    assert methods == {"GET"}
    assert all(auth == "Bearer t0ken" for _m, _p, auth in _Api.seen)
    assert any("labelSelector=owner%3Dhelm%2Cname%3Dcircleci-server" in path for _m, path, _a in _Api.seen)


def test_an_unreachable_cluster_says_what_to_check():
    reader = k8s.K8sReader(k8s.api_client_from_params({"host": "http://127.0.0.1:9"}), request_timeout=2)
    reader.api_client.configuration.retries = 0
    with pytest.raises(k8s.K8sError, match="Could not reach the Kubernetes API server"):
        reader.version()


def test_helm_release_picks_the_deployed_revision_or_the_asked_one():
    reader = FakeReader([
        helm_release_secret(NS, "circleci-server", 1, "4.2.5", {"a": 1}, status="superseded"),
        helm_release_secret(NS, "circleci-server", 2, "4.2.7", {"a": 2}),
        helm_release_secret(NS, "circleci-server", 3, "4.3.9", {"a": 3}, status="failed"),
        helm_release_secret(NS, "other", 9, "1.0.0", {"a": 9}),
    ])
    assert k8s.helm_release_values(reader, NS, "circleci-server") == {"a": 2}
    assert k8s.helm_release_values(reader, NS, "circleci-server", revision=3) == {"a": 3}
    with pytest.raises(k8s.HelmReleaseError, match="no revision 7"):
        k8s.helm_release(reader, NS, "circleci-server", revision=7)
    summary = k8s.release_summary(reader, NS, "circleci-server")
    assert summary["exists"] and summary["revision"] == 2 and summary["chart_version"] == "4.2.7"
    assert [r["revision"] for r in summary["revisions"]] == [3, 2, 1]
    assert "config" not in json.dumps(summary)
    assert k8s.release_summary(reader, NS, "missing")["exists"] is False


def test_decode_helm_release_handles_plain_json_and_garbage():
    plain = base64.b64encode(json.dumps({"name": "r", "config": {}}).encode())
    assert k8s.decode_helm_release(plain)["name"] == "r"
    with pytest.raises(k8s.HelmReleaseError):
        k8s.decode_helm_release(base64.b64encode(b"\x1f\x8b\x08garbage"))
    with pytest.raises(k8s.HelmReleaseError):
        k8s.decode_helm_release(base64.b64encode(b"not json"))


@pytest.mark.parametrize("doc, expected", [
    ({"gitVersion": "v1.29.4-gke.1043002"}, "1.29.4"),
    ({"gitVersion": "", "major": "1", "minor": "28+"}, "1.28.0"),
])
def test_normalise_kubernetes_version(doc, expected):
    assert k8s.normalise_kubernetes_version(doc) == expected


def test_dig_and_label_selector():
    assert k8s.dig({"a": {"b": 1}}, "a.b") == 1
    assert k8s.dig({"a": {"b": 1}}, "a.c", "d") == "d"
    assert k8s.dig({"a": 3}, "a.b") is None
    assert k8s.label_selector({"b": "2", "a": "1"}) == "a=1,b=2"


@pytest.mark.parametrize("status, expected", [
    ('{"metadata": {}, "status": "Success"}', 0),
    (json.dumps({"status": "Failure", "reason": "NonZeroExitCode", "message": "command terminated with non-zero exit code",
                 "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}), 3),
])
def test_exec_returncode_reads_the_exit_code_from_the_status_channel(status, expected):
    assert k8s.exec_returncode(status) == expected


@pytest.mark.parametrize("status, said", [
    (json.dumps({"status": "Failure", "message": 'container "mongo" not found in pod "mongodb-0"'}), "container \"mongo\" not found"),
    ("", "the API server sent no status"),
    ("not json", "not json"),
])
def test_an_exec_without_an_exit_code_is_an_error_that_says_why(status, said):
    with pytest.raises(k8s.K8sError, match="The exec ended without an exit code") as raised:
        k8s.exec_returncode(status)
    assert said in str(raised.value)
