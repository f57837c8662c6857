"""The lab's AWS: moto's server, in-process, with the lab's request log and fault injection in front.

Stands in for the AWS APIs the collection calls (Auto Scaling, EC2, IAM, STS, S3, EKS...) at one
endpoint URL on 127.0.0.1, reachable with boto3, the aws CLI and the amazon.aws modules through
``AWS_ENDPOINT_URL`` and dummy keys (see ``AwsLab.env``). moto 5.2.5 does the work; ``moto_patches``
adds the Auto Scaling operations it lacks (instance refresh, CompleteLifecycleAction and the
Terminating:Wait of termination lifecycle hooks, DisableMetricsCollection) and fixes its bugs around launch template versions and CreateImage.

In front of moto, a WSGI middleware:

- names each request ``<service>/<Action>`` (service from the SigV4 credential scope, Action from
  the query-protocol body, the JSON protocol's X-Amz-Target, or for REST services such as S3 the
  path: ``s3/<bucket>/<key>`` plus ``?<subresource>`` keys, e.g. ``s3/my-bucket?versioning``);
- asks the lab's ``FaultInjector`` first, with service ``"aws"``, the HTTP method (``POST`` for
  every query-protocol call) and that name, and answers a fault in the protocol's own error format
  (query XML ``ErrorResponse``, EC2 ``Response/Errors``, S3 ``Error``, JSON ``__type``), so boto3's
  retry logic treats it like the real thing. The fault's ``message`` may carry the error code:
  ``"Throttling"`` or ``"Throttling: Rate exceeded"``; otherwise the code follows the status;
- records in the ``RequestLog`` (service ``"aws"``, method ``POST``, path ``autoscaling/SetDesiredCapacity``)
  only mutating calls: query/JSON Actions that do not start with Describe/List/Get and are not
  ``DryRun=true``, and REST calls with PUT/POST/PATCH/DELETE. A check-mode run therefore logs nothing;
- serialises the requests to moto under ``AwsLab.lock``; hold it to read or change moto's backends
  consistently from another thread (``AwsLab.autoscaling_backend()``, ``AwsLab.ec2_backend()``, i.e.
  ``moto.autoscaling.models.autoscaling_backends[DEFAULT_ACCOUNT_ID][region]``; look them up again
  after ``reset()``, which replaces them).

Not modelled: moto features that call the server back over HTTP (SNS deliveries, Lambda
invocations: they would wait for ``AwsLab.lock``), IAM authorisation (every key is allowed),
accounts other than moto's default ``DEFAULT_ACCOUNT_ID`` (123456789012), latency, eventual
consistency, and anything moto itself does not model. moto's state is process-global: one ``AwsLab`` per process (``start()`` resets it).
"""
from __future__ import annotations

import io
import json
import os
import re
import shlex
import threading
import time
import uuid
from urllib.parse import parse_qs

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import UNSIGNED_ACTIONS, DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from . import moto_patches

SERVICE = "aws"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
READ_ONLY_PREFIXES = ("Describe", "List", "Get")
MUTATING_METHODS = ("PUT", "POST", "PATCH", "DELETE")
# Services whose REST protocol speaks JSON (errors as {"__type": ...}); other REST services speak XML.
REST_JSON_SERVICES = frozenset({"eks", "lambda", "apigateway", "ecr", "efs", "elasticfilesystem", "ecs"})
# The error code a fault gets when its message does not name one.
DEFAULT_CODES = {400: "ValidationError", 401: "UnrecognizedClientException", 403: "AccessDenied", 404: "NotFound",
                 409: "Conflict", 429: "Throttling", 500: "InternalFailure", 502: "BadGateway",
                 503: "ServiceUnavailable", 504: "RequestTimeout"}
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_CODE = re.compile(r"^([A-Z][A-Za-z0-9.]*)(?::\s*(.*))?$")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class _Call:
    """What the middleware knows about one request: its service, name, protocol and whether it writes."""

    def __init__(self, environ: dict, body: bytes):
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        auth = environ.get("HTTP_AUTHORIZATION", "")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        scope = _SCOPE.search(auth) or _SCOPE.search("Credential=" + query.get("X-Amz-Credential", [""])[0])
        self.region, self.service = (scope.group(1), scope.group(2)) if scope else ("", "unknown")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        form = {}
        if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(query, **form)
        self.dry_run = params.get("DryRun", ["false"])[0].lower() == "true"
        if target:
            self.protocol = "json"
            self.action = target.rsplit(".", 1)[-1]
        elif "Action" in params:
            self.protocol = "ec2" if self.service == "ec2" else "query"
            self.action = params["Action"][0]
        else:
            self.protocol = "rest-json" if self.service in REST_JSON_SERVICES else "rest-xml"
            self.action = None
        if self.action and not scope and self.action in UNSIGNED_ACTIONS:
            # STS AssumeRoleWithWebIdentity (IRSA) and AssumeRoleWithSAML are not signed.
            self.service, self.region = UNSIGNED_ACTIONS[self.action]
        if self.action:
            self.path = "%s/%s" % (self.service, self.action)
            self.mutating = not self.action.startswith(READ_ONLY_PREFIXES) and not self.dry_run
            self.log_method = "POST"
        else:
            subresources = sorted(key for key, values in query.items() if values == [""] and not key.startswith("X-Amz-"))
            self.path = self.service + environ.get("PATH_INFO", "/").rstrip("/")
            if subresources:
                self.path += "?" + "&".join(subresources)
            self.mutating = self.method in MUTATING_METHODS
            self.log_method = self.method


def _error_response(call: _Call, status: int, message: str) -> tuple[dict, bytes]:
    match = _CODE.match(message or "")
    if match:
        code, text = match.group(1), match.group(2) or match.group(1)
    else:
        code, text = DEFAULT_CODES.get(status, "InternalFailure"), message or "injected fault"
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if call.protocol in ("json", "rest-json"):
        headers.update({"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})
        return headers, json.dumps({"__type": code, "message": text, "Message": text}).encode()
    headers["Content-Type"] = "text/xml"
    code, text = _xml_escape(code), _xml_escape(text)
    if call.protocol == "ec2":
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message>"
                "</Error></Errors><RequestID>%s</RequestID></Response>" % (code, text, request_id))
    elif call.protocol == "query":
        kind = "Receiver" if status >= 500 else "Sender"
        body = ("<ErrorResponse xmlns=\"https://%s.amazonaws.com/doc/\"><Error><Type>%s</Type><Code>%s</Code>"
                "<Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>"
                % (_xml_escape(call.service), kind, code, text, request_id))
    else:
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>%s</RequestId></Error>" % (code, text, request_id))
    if call.method == "HEAD":
        return headers, b""
    return headers, body.encode()


class _QuietHandler(MotoRequestHandler):
    """moto's request handler without werkzeug's line per request on stderr."""

    def log_request(self, code="-", size="-"):
        pass


class AwsLab:
    """moto's server on 127.0.0.1 with the lab's request log and fault injection (see the module docstring)."""

    def __init__(self, clock, request_log, faults, region: str = "us-east-1", tick_seconds: float = 0.05):
        self.clock = clock
        self.request_log = request_log
        self.faults = faults
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self.tick_seconds = tick_seconds
        self.lock = threading.RLock()
        self.url = None
        self.startup_seconds = None
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._app = None
        self._clients: dict = {}

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Starts serving and returns the endpoint URL; moto's state starts empty."""
        if self._server is not None:
            return self.url
        began = time.monotonic()
        moto_patches.install(self.clock)
        self.reset()
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(host, port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = "http://%s:%d" % (host, self._server.server_address[1])
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._server.serve_forever, name="aws-lab-http", daemon=True),
                         threading.Thread(target=self._tick, name="aws-lab-ticker", daemon=True)]
        for thread in self._threads:
            thread.start()
        self.startup_seconds = time.monotonic() - began
        return self.url

    def stop(self) -> None:
        """Stops serving and frees the port; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []

    def reset(self) -> None:
        """Empties moto's backends (every account and region) and the lab's own AWS records."""
        from moto.moto_api._internal.models import moto_api_backend  # pylint: disable=import-outside-toplevel
        with self.lock:
            moto_api_backend.reset()
            moto_patches.reset()

    def _tick(self) -> None:
        """Moves instance refreshes and lifecycle hooks' heartbeat timeouts on with lab time, even when nobody asks about them."""
        while not self._stopping.wait(self.tick_seconds):
            with self.lock:
                moto_patches.advance_instance_refreshes()
                moto_patches.advance_lifecycle_actions()

    # --- the middleware -------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        call = _Call(environ, body)
        # A write is recorded as it arrives and completed with its status when moto is done (RequestLog).
        token = self.request_log.begin(SERVICE, call.log_method, call.path) if call.mutating else None
        seen: dict = {}
        try:
            fault = self.faults.check(SERVICE, call.method, call.path)
            if fault is not None:
                headers, payload = _error_response(call, fault.status, fault.message)
                headers["Content-Length"] = str(len(payload))
                seen["status"] = fault.status
                start_response("%d %s" % (fault.status, _REASONS.get(fault.status, "Error")), list(headers.items()))
                return [payload]

            def _start_response(status, headers, exc_info=None):
                seen["status"] = int(status.split()[0])
                return start_response(status, headers, exc_info)

            with self.lock:
                result = self._app(environ, _start_response)
                try:
                    payload = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            return [payload]
        finally:
            self.request_log.end(token, seen.get("status"))

    # --- helpers for tests and scenarios ----------------------------------------------------------

    def env(self) -> dict:
        """The environment variables that point boto3, the aws CLI and amazon.aws modules at the lab."""
        if self.url is None:
            raise RuntimeError("AwsLab.env() needs a started lab")
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # No instance metadata service here: do not wait for one when looking for credentials.
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def write_env_file(self, path: str) -> str:
        """Writes ``export KEY='value'`` lines for ``env()`` to ``path`` (mode 0600) and returns the path."""
        lines = ["export %s=%s\n" % (key, shlex.quote(value)) for key, value in sorted(self.env().items())]
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.writelines(lines)
        os.chmod(path, 0o600)
        return path

    def client(self, service: str, **kwargs):
        """A boto3 client for ``service`` against the lab (cached per service when no options are given)."""
        import boto3  # pylint: disable=import-outside-toplevel
        if not kwargs and (service, self.url) in self._clients:
            return self._clients[(service, self.url)]
        options = {"endpoint_url": self.url, "region_name": self.region, "aws_access_key_id": ACCESS_KEY_ID,
                   "aws_secret_access_key": SECRET_ACCESS_KEY}
        options.update(kwargs)
        client = boto3.client(service, **options)
        if not kwargs:
            self._clients[(service, self.url)] = client
        return client

    def image_id(self) -> str:
        """The id of an Amazon Linux 2 image of moto's catalogue (an unfiltered DescribeImages takes seconds)."""
        images = self.client("ec2").describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])
        return sorted(image["ImageId"] for image in images["Images"])[0]

    def autoscaling_backend(self):
        """moto's Auto Scaling backend of the lab's account and region (hold ``self.lock`` while using it)."""
        from moto.autoscaling.models import autoscaling_backends  # pylint: disable=import-outside-toplevel
        return autoscaling_backends[self.account_id][self.region]

    def ec2_backend(self):
        """moto's EC2 backend of the lab's account and region (hold ``self.lock`` while using it)."""
        from moto.ec2.models import ec2_backends  # pylint: disable=import-outside-toplevel
        return ec2_backends[self.account_id][self.region]

    def completed_lifecycle_actions(self) -> list[dict]:
        """The CompleteLifecycleAction calls received so far, oldest first."""
        return list(moto_patches.completed_lifecycle_actions(self.account_id, self.region))
