"""A stand-in for an OCI registry that requires a login, as ``cciserver.azurecr.io`` does, serving Helm charts.

Served over plain HTTP on 127.0.0.1: helm 3.17 talks plain HTTP to a registry on localhost / 127.0.0.1 by itself
(containerd's resolver; ``helm registry login`` tries HTTPS first, then HTTP), as it would not to a real host:

- ``GET /v2/`` (the ping): 401 with ``WWW-Authenticate: Bearer realm=".../oauth2/token",service="<host>"`` until
  the request carries a token this registry issued, or Basic credentials it accepts; then 200.
- ``GET /oauth2/token?service=&scope=`` with Basic credentials (docker's token flow) and ``POST /oauth2/token``
  with a form ``grant_type=password&username=&password=`` (OAuth2, what oras-go tries first): a bearer token, or
  401 for wrong credentials. Tokens do not expire and carry no scope (any repository may be pulled).
- ``GET /v2/<name>/tags/list``; ``HEAD``/``GET /v2/<name>/manifests/<tag or digest>`` (OCI image manifest,
  ``Docker-Content-Digest``); ``HEAD``/``GET /v2/<name>/blobs/<digest>``. Errors in the distribution spec's
  ``{"errors": [{"code", "message"}]}`` form (``NAME_UNKNOWN``, ``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``,
  ``UNAUTHORIZED``).
- ``push_chart(archive)``: what ``helm push`` leaves in a registry (a Helm config blob, the chart layer, a
  manifest tagged with the chart version), stored from Python at seeding.

The token endpoint's POST only reads (it issues a token): it is not recorded in the request log.
Not modelled: TLS, pushing over HTTP (uploads, mounts), deleting, the referrers and catalog APIs, scoped or
expiring tokens, rate limits, anonymous pull, multiple accounts.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import secrets
import tarfile
import threading
from urllib.parse import parse_qs


from . import yaml_c
from .standin_http import HttpStandIn, Request, Response

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
TOKEN_PATH = "/oauth2/token"
_NAME = r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
_ROUTES = (
    ("tags", re.compile(r"^/v2/%s/tags/list$" % _NAME)),
    ("manifest", re.compile(r"^/v2/%s/manifests/(?P<reference>[^/]+)$" % _NAME)),
    ("blob", re.compile(r"^/v2/%s/blobs/(?P<digest>sha256:[0-9a-f]{64})$" % _NAME)),
)


class RawResponse(Response):
    """A response whose body and Content-Type are sent as given (manifests need their media type)."""

    def __init__(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        super().__init__(status, body, headers)
        self.content_type = content_type

    def encode(self) -> tuple[bytes, str]:
        return self.payload, self.content_type


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    return Response(status, {"errors": [{"code": code, "message": message, "detail": None}]}, headers=headers)


class OciRegistry(HttpStandIn):
    """Charts by repository name; credentials ``username``/``password``; ``base_url`` after ``start()``."""

    SERVICE = "registry"

    def __init__(self, clock, request_log=None, faults=None, username: str = "", password: str = ""):
        super().__init__(clock, request_log, faults)
        self.username = username
        self.password = password
        self._tokens: set[str] = set()
        self._repositories: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.logins = {"accepted": 0, "refused": 0}

    # --- seeding -------------------------------------------------------------------------------------
    def push_chart(self, archive: str, name: str = "") -> str:
        """Store a packaged chart as ``helm push`` would; returns ``<name>:<version>``."""
        with open(archive, "rb") as handle:
            layer = handle.read()
        metadata = None
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.name.count("/") == 1 and member.name.endswith("/Chart.yaml"):
                    metadata = yaml_c.safe_load(tar.extractfile(member).read())
                    break
        if not metadata:
            raise ValueError("%s holds no <chart>/Chart.yaml" % archive)
        name = name or metadata["name"]
        config = json.dumps(metadata, sort_keys=True).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": HELM_CONFIG_TYPE, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": HELM_LAYER_TYPE, "digest": _digest(layer), "size": len(layer)}],
            "annotations": {"org.opencontainers.image.title": metadata["name"],
                            "org.opencontainers.image.version": str(metadata["version"])},
        }, sort_keys=True).encode()
        with self._lock:
            repository = self._repositories.setdefault(name, {"tags": {}, "manifests": {}, "blobs": {}})
            repository["blobs"][_digest(config)] = config
            repository["blobs"][_digest(layer)] = layer
            repository["manifests"][_digest(manifest)] = manifest
            repository["tags"][str(metadata["version"])] = _digest(manifest)
        return "%s:%s" % (name, metadata["version"])

    def tags(self, name: str) -> list[str]:
        with self._lock:
            return sorted((self._repositories.get(name) or {}).get("tags", {}))

    @property
    def host(self) -> str:
        return self.base_url.split("://", 1)[1]

    # --- authentication ------------------------------------------------------------------------------
    def _basic_ok(self, header: str) -> bool:
        try:
            user, _sep, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.username) and secrets.compare_digest(password, self.password)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization") or ""
        if header.startswith("Bearer "):
            with self._lock:
                return header[7:].strip() in self._tokens
        if header.startswith("Basic "):
            return self._basic_ok(header)
        return False

    def _challenge(self, scope: str = "") -> Response:
        value = 'Bearer realm="%s%s",service="%s"' % (self.base_url, TOKEN_PATH, self.host)
        if scope:
            value += ',scope="%s"' % scope
        return _error(401, "UNAUTHORIZED", "authentication required", headers={"WWW-Authenticate": value})

    def _token(self, request: Request) -> Response:
        if request.method == "POST":
            form = {key: values[-1] for key, values in parse_qs(request.body.decode(errors="replace")).items()}
            accepted = (form.get("grant_type") == "password"
                        and secrets.compare_digest(form.get("username", ""), self.username)
                        and secrets.compare_digest(form.get("password", ""), self.password))
        else:
            accepted = (request.headers.get("Authorization") or "").startswith("Basic ") and self._basic_ok(
                request.headers["Authorization"])
        if not accepted:
            self.logins["refused"] += 1
            return _error(401, "UNAUTHORIZED", "invalid username or password")
        self.logins["accepted"] += 1
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return Response(200, {"token": token, "access_token": token, "expires_in": 3600})

    # --- the distribution API ------------------------------------------------------------------------
    def read_only(self, request: Request) -> bool:
        return request.path == TOKEN_PATH

    def handle(self, request: Request) -> Response:
        if request.path == TOKEN_PATH and request.method in ("GET", "POST"):
            return self._token(request)
        if request.path in ("/v2", "/v2/"):
            return Response(200, {}) if self._authorized(request) else self._challenge()
        for kind, pattern in _ROUTES:
            match = pattern.match(request.path)
            if match:
                break
        else:
            return _error(404, "NOT_FOUND", "no such endpoint: %s %s" % (request.method, request.path))
        name = match.group("name")
        if not self._authorized(request):
            return self._challenge("repository:%s:pull" % name)
        if request.method not in ("GET", "HEAD"):
            return _error(405, "UNSUPPORTED", "this registry stand-in serves pulls only")
        with self._lock:
            repository = self._repositories.get(name)
            if repository is None:
                return _error(404, "NAME_UNKNOWN", "repository name not known to registry: %s" % name)
            if kind == "tags":
                return Response(200, {"name": name, "tags": sorted(repository["tags"])})
            if kind == "manifest":
                reference = match.group("reference")
                digest = reference if reference.startswith("sha256:") else repository["tags"].get(reference)
                body = repository["manifests"].get(digest or "")
                if body is None:
                    return _error(404, "MANIFEST_UNKNOWN", "manifest unknown: %s:%s" % (name, reference))
                return RawResponse(200, body, MANIFEST_TYPE, headers={"Docker-Content-Digest": digest})
            digest = match.group("digest")
            body = repository["blobs"].get(digest)
            if body is None:
                return _error(404, "BLOB_UNKNOWN", "blob unknown: %s" % digest)
            return RawResponse(200, body, "application/octet-stream", headers={"Docker-Content-Digest": digest})
