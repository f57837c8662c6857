"""The lab's decoder of Kubernetes protobuf bodies, checked against bodies that real clients sent.

The fixtures were captured from kubectl 1.31 (JSON) and kubectl 1.32 (protobuf) running the same
``kubectl create ...`` commands, and from ``helm install`` (release Secrets, protobuf), so each
protobuf body has the JSON body its decoding must equal. The live tests run the clients again
when their binaries are on this machine.
"""
from __future__ import annotations

import base64
import gzip
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tests.lab.kube.protobuf import CONTENT_TYPE, MAGIC, decode_object, encode_object

FIXTURES = Path(__file__).parent / "fixtures"
KUBECTL_PAIRS = sorted(p.stem for p in FIXTURES.glob("kubectl_*.pb"))
KUBECTL_132 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
HELM = shutil.which("helm")


@pytest.mark.parametrize("name", KUBECTL_PAIRS)
def test_kubectl_protobuf_body_decodes_to_the_json_body(name):
    body = (FIXTURES / (name + ".pb")).read_bytes()
    assert body.startswith(MAGIC)
    assert decode_object(body) == json.loads((FIXTURES / (name + ".json")).read_text())


@pytest.mark.parametrize("name", KUBECTL_PAIRS + ["helm_release_secret_create", "helm_release_secret_update"])
def test_encoding_a_decoded_body_gives_back_the_same_bytes(name):
    body = (FIXTURES / (name + ".pb")).read_bytes()
    assert encode_object(decode_object(body)) == body


def test_binary_secret_data_survives_as_base64():
    obj = decode_object((FIXTURES / "kubectl_secret_generic.pb").read_bytes())
    assert base64.b64decode(obj["data"]["blob"]) == b"\x00\x01\xffbinary"
    assert base64.b64decode(obj["data"]["password"]) == b"hunter2"
    assert obj["type"] == "Opaque"


@pytest.mark.parametrize("name, status", [("helm_release_secret_create", "pending-install"),
                                          ("helm_release_secret_update", "deployed")])
def test_helm_release_secret(name, status):
    obj = decode_object((FIXTURES / (name + ".pb")).read_bytes())
    assert obj["kind"] == "Secret" and obj["type"] == "helm.sh/release.v1"
    assert obj["metadata"]["name"] == "sh.helm.release.v1.rel1.v1"
    labels = obj["metadata"]["labels"]
    assert (labels["owner"], labels["name"], labels["status"], labels["version"]) == ("helm", "rel1", status, "1")
    # helm stores base64(gzip(release JSON)) as the Secret's data, which JSON base64-encodes again.
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(obj["data"]["release"]))))
    assert release["name"] == "rel1" and release["info"]["status"] == status


FULL_OBJECTS = [
    {"kind": "Secret", "apiVersion": "v1",
     "metadata": {"name": "s", "namespace": "circleci-server", "uid": "0b7c2f1e-1111-4c1d-9b1a-000000000001",
                  "resourceVersion": "42", "generation": 3, "creationTimestamp": "2026-11-23T10:00:05Z",
                  "deletionTimestamp": "2026-11-23T11:00:00Z", "deletionGracePeriodSeconds": 0,
                  "labels": {"app": "frontend", "owner": "helm"},
                  "annotations": {"meta.helm.sh/release-name": "circleci-server", "note": "ünïcode"},
                  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                                       "uid": "u-1", "controller": True, "blockOwnerDeletion": False}],
                  "finalizers": ["kubernetes.io/pvc-protection", "example.com/x"]},
     "data": {"k": base64.b64encode(b"\x00\xff").decode()}, "stringData": {"raw": "value"}, "type": "Opaque",
     "immutable": False},
    {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"generateName": "cfg-", "creationTimestamp": None},
     "data": {"a": "1", "b": ""}, "binaryData": {"bin": "AAE="}, "immutable": True},
    {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "ns", "creationTimestamp": None},
     "spec": {"finalizers": ["kubernetes"]},
     "status": {"phase": "Terminating", "conditions": [
         {"type": "NamespaceDeletionContentFailure", "status": "False", "lastTransitionTime": "2026-01-02T03:04:05Z",
          "reason": "ContentDeleted", "message": "All content successfully deleted"}]}},
    {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "vm-service", "creationTimestamp": None,
                                                                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/r"}},
     "secrets": [{"kind": "Secret", "namespace": "ns", "name": "t", "uid": "u", "apiVersion": "v1",
                  "resourceVersion": "9", "fieldPath": "f"}],
     "imagePullSecrets": [{"name": "regcred"}, {"name": "other"}], "automountServiceAccountToken": False},
]


@pytest.mark.parametrize("obj", FULL_OBJECTS, ids=[o["kind"] for o in FULL_OBJECTS])
def test_every_modelled_field_round_trips(obj):
    assert decode_object(encode_object(obj)) == obj


def test_zero_values_are_left_out_like_go_json_omitempty():
    obj = decode_object(encode_object({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}}))
    assert obj == {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "creationTimestamp": None}}
    namespace = decode_object(encode_object({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "n"}}))
    assert namespace["spec"] == {} and namespace["status"] == {}


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._/", min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(labels=st.dictionaries(_names, st.text(max_size=40), max_size=5),
       data=st.dictionaries(_names, st.binary(max_size=64), max_size=5),
       immutable=st.one_of(st.none(), st.booleans()), generation=st.integers(min_value=0, max_value=2 ** 62))
def test_random_secrets_round_trip(labels, data, immutable, generation):
    meta = {"name": "s", "creationTimestamp": None}
    if labels:
        meta["labels"] = labels
    if generation:
        meta["generation"] = generation
    obj = {"kind": "Secret", "apiVersion": "v1", "metadata": meta}
    if data:
        obj["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
    if immutable is not None:
        obj["immutable"] = immutable
    assert decode_object(encode_object(obj)) == obj


def _envelope(api_version: bytes, kind: bytes, raw: bytes = b"", encoding: bytes = b"") -> bytes:
    def field(number, payload):
        return bytes([number << 3 | 2, len(payload)]) + payload
    return MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw) + field(3, encoding)


@pytest.mark.parametrize("body, message", [
    (b'{"kind": "Secret"}', "k8s"),
    (_envelope(b"v1", b"Pod"), "Pod"),
    (_envelope(b"apps/v1", b"Deployment"), "Deployment"),
    (_envelope(b"v1", b"Secret", encoding=b"gzip"), "contentEncoding"),
    ((FIXTURES / "kubectl_secret_generic.pb").read_bytes()[:-5], "remain|truncated"),
    (MAGIC + b"\x0a\xff", "truncated"),
])
def test_bodies_that_are_not_modelled_raise_value_error(body, message):
    with pytest.raises(ValueError, match=message):
        decode_object(body)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Just enough of an API server for `kubectl create` and `helm install` to send their bodies."""

    bodies: list = []

    def _answer(self, status, obj):
        payload = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0]
        if path == "/version":
            return self._answer(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        if path == "/api":
            return self._answer(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            return self._answer(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self._answer(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "secrets", "namespaced": True, "kind": "Secret", "verbs": ["create", "get", "list", "update"]}]})
        if path.endswith("/secrets"):
            return self._answer(200, {"kind": "SecretList", "apiVersion": "v1", "metadata": {}, "items": []})
        return self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def _store(self, status):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.bodies.append((self.command, self.headers.get("Content-Type"), body))
        obj = decode_object(body) if self.headers.get("Content-Type") == CONTENT_TYPE else json.loads(body)
        obj["metadata"].update(namespace="default", resourceVersion="1")
        self._answer(status, obj)

    def do_POST(self):  # noqa: N802
        self._store(201)

    def do_PUT(self):  # noqa: N802
        self._store(200)

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def recorder(tmp_path):
    _Recorder.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "http://127.0.0.1:%d" % server.server_address[1]}}],
        "users": [{"name": "lab", "user": {"token": "t"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": "default"}}]}))
    yield kubeconfig, _Recorder.bodies
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.skipif(not os.access(KUBECTL_132, os.X_OK), reason="kubectl 1.32 is not on this machine")
def test_live_kubectl_132_secret(recorder, tmp_path):
    kubeconfig, bodies = recorder
    (tmp_path / "blob").write_bytes(b"\x00\x01\xff")
    subprocess.run([KUBECTL_132, "--kubeconfig", str(kubeconfig), "create", "secret", "generic", "live",
                    "--from-literal=password=s3cr3t", "--from-file=blob=%s" % (tmp_path / "blob")],
                   check=True, capture_output=True, timeout=60)
    (method, content_type, body), = bodies
    assert (method, content_type) == ("POST", CONTENT_TYPE)
    assert decode_object(body)["data"] == {"blob": "AAH/", "password": base64.b64encode(b"s3cr3t").decode()}


@pytest.mark.skipif(HELM is None, reason="helm is not on PATH")
def test_live_helm_install_release_secret(recorder, tmp_path):
    kubeconfig, bodies = recorder
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    helm_env = dict(os.environ, HELM_CACHE_HOME=str(tmp_path / "c"), HELM_CONFIG_HOME=str(tmp_path / "f"),
                    HELM_DATA_HOME=str(tmp_path / "d"))
    subprocess.run([HELM, "--kubeconfig", str(kubeconfig), "install", "live", str(chart), "-n", "default"],
                   check=True, capture_output=True, timeout=60, env=helm_env)
    assert [(method, content_type) for method, content_type, _body in bodies] == [("POST", CONTENT_TYPE), ("PUT", CONTENT_TYPE)]
    statuses = [decode_object(body)["metadata"]["labels"]["status"] for _method, _type, body in bodies]
    assert statuses == ["pending-install", "deployed"]
