# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes access shared by the collection's modules: the auth argument spec, a client, read helpers.

* ``K8S_AUTH_ARGSPEC``: merge into a module's argument_spec; documented by the ``circleci.server.k8s_auth``
  doc fragment (same names and K8S_AUTH_* variables as kubernetes.core).
* ``api_client_from_params(params)``: a ``kubernetes.client.ApiClient`` built from those options.
* ``K8sReader``: the small read interface modules' logic uses (``version``, ``get``, ``list``,
  ``get_custom``, ``list_custom``), returning plain JSON dicts; tests replace it with a fake.
* ``pod_exec``: run a command in a Pod's container (pods/exec) with the websocket client alone;
  ``exec_returncode`` reads the command's exit status from the API's status channel.
* ``read_secret``, ``list_by_label``, ``helm_release``, ``helm_release_values``: helpers over any reader.
  The helm ones decode helm 3's release Secrets (``sh.helm.release.v1.<release>.v<N>``) so no helm binary
  is needed.

The ``kubernetes`` library is imported lazily: ``HAS_K8S`` tells whether it is there, and
``missing_library_message()`` is the message a module fails with when it is not.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback

from ansible_collections.circleci.server.plugins.module_utils.files import (
    InputError,
    load_yaml,
    read_text,
    yaml_error_message,
)

try:
    import kubernetes  # noqa: F401  pylint: disable=unused-import
    from kubernetes.client.exceptions import ApiException
    HAS_K8S = True
    K8S_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - depends on the controller's libraries
    HAS_K8S = False
    K8S_IMPORT_ERROR = _exc

    class ApiException(Exception):  # type: ignore[no-redef]
        status = None


K8S_AUTH_ARGSPEC = {
    "kubeconfig": {"type": "raw", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_KUBECONFIG"])},
    "context": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_CONTEXT"])},
    "host": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_HOST"])},
    "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["K8S_AUTH_API_KEY"])},
    "validate_certs": {"type": "bool", "aliases": ["verify_ssl"], "fallback": (env_fallback, ["K8S_AUTH_VERIFY_SSL"])},
    "ca_cert": {"type": "path", "aliases": ["ssl_ca_cert"], "fallback": (env_fallback, ["K8S_AUTH_SSL_CA_CERT"])},
    "client_cert": {"type": "path", "aliases": ["cert_file"], "fallback": (env_fallback, ["K8S_AUTH_CERT_FILE"])},
    "client_key": {"type": "path", "aliases": ["key_file"], "no_log": False,
                   "fallback": (env_fallback, ["K8S_AUTH_KEY_FILE"])},
    "proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_PROXY"])},
    "no_proxy": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_NO_PROXY"])},
    "impersonate_user": {"type": "str", "fallback": (env_fallback, ["K8S_AUTH_IMPERSONATE_USER"])},
    "request_timeout": {"type": "float", "default": 20.0,
                        "fallback": (env_fallback, ["CIRCLECI_SERVER_K8S_REQUEST_TIMEOUT"])},
}

# Seconds one API request may take, connection retries included: a preflight must not hang on an
# unreachable cluster (urllib3's default of 3 retries per request made a 30 s timeout last 120 s).
REQUEST_TIMEOUT = 20.0
MAX_REQUEST_TIMEOUT = 3600.0
# Refused or reset connections are retried within the budget; a request that was sent and not answered is
# not (a server that accepts and never answers would only take the budget again).
CONNECT_RETRIES = 2


class K8sError(Exception):
    """A Kubernetes read that failed; the message says what to check."""


def missing_library_message() -> str:
    return ("This module needs the kubernetes Python library on the host it runs on: install the kubernetes "
            "Python library (pip install kubernetes) into the Python that runs the module (%s)." % K8S_IMPORT_ERROR)


def request_timeout_from_params(params) -> float:
    """The ``request_timeout`` option, checked: seconds, more than 0 and at most an hour."""
    value = params.get("request_timeout")
    if value is None:
        return REQUEST_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_REQUEST_TIMEOUT:
        raise K8sError("request_timeout is %r: set it to the seconds one Kubernetes API request may take, more than "
                       "0 and at most %d (default %d)." % (value, MAX_REQUEST_TIMEOUT, REQUEST_TIMEOUT))
    return float(value)


def timeout_pair(request_timeout):
    """The (connect, read) timeouts of one attempt, so that every connection retry fits in ``request_timeout``."""
    return (max(0.5, request_timeout / (CONNECT_RETRIES + 1)), request_timeout)


def _retries():
    """Connection retries only, a short backoff, never a retry of a request the server received."""
    from urllib3.util.retry import Retry  # pylint: disable=import-outside-toplevel
    return Retry(total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, status=0, other=0, redirect=0,
                 backoff_factor=0.2, raise_on_status=False)


_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAME_RULES = {
    "namespace": (re.compile(r"^%s$" % _LABEL, re.ASCII), 63,
                  "a namespace name: lower-case letters, digits and '-', at most 63 characters"),
    "release": (re.compile(r"^%s(\.%s)*$" % (_LABEL, _LABEL), re.ASCII), 53,
                "a Helm release name: lower-case letters, digits, '-' and '.', at most 53 characters"),
}


def check_names(params, options):
    """Refuse a namespace or release option that Kubernetes or Helm would not accept, before any request.

    ``options`` maps option names to their kind ("namespace" or "release"). Raises ``K8sError`` naming the
    option and the accepted form ('../kube-system' or 'ns/secrets' would otherwise reach an API path).
    """
    for option, kind in options.items():
        value = params.get(option)
        if value is None:
            continue
        pattern, limit, form = _NAME_RULES[kind]
        if not isinstance(value, str) or len(value) > limit or not pattern.match(value):
            shown = repr(value) if len(repr(value)) <= 70 else repr(value)[:70] + "..."
            raise K8sError("%s is %s, which is not %s: give the name as kubectl get %s shows it." % (
                option, shown, form, "namespaces" if kind == "namespace" else "secrets -l owner=helm"))


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def _no_secrets(exc) -> str:
    """An exception's text with anything that looks like a token or a key cut out."""
    return re.sub(r"(?i)(token|password|secret|key|cert)[^,;)]*", r"\1 (not shown)", str(exc))[:300]


def _kubeconfig_paths(kubeconfig):
    if isinstance(kubeconfig, dict):
        return []
    if kubeconfig:
        return [str(kubeconfig)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [path for path in env.split(os.pathsep) if path and os.path.exists(path)]
    default = os.path.expanduser("~/.kube/config")
    return [default] if os.path.exists(default) else []


def _check_kubeconfig(kubeconfig):
    """Refuse a kubeconfig file that is not a regular file, too big, not YAML or not a mapping, with a message."""
    if kubeconfig is not None and not isinstance(kubeconfig, (dict, str)):
        raise InputError("kubeconfig is a %s: give the path of a kubeconfig file, or the config itself as a "
                         "dictionary." % type(kubeconfig).__name__)
    for path in _kubeconfig_paths(kubeconfig):
        document = load_yaml(read_text(path, "The kubeconfig"), "The kubeconfig %s" % path)
        if document is not None and not isinstance(document, dict):
            raise InputError("The kubeconfig %s is a YAML %s, not a kubeconfig (a mapping with clusters, contexts "
                             "and users): give the path of a kubeconfig file." % (path, type(document).__name__))


def api_client_from_params(params):
    """A ``kubernetes.client.ApiClient`` from the K8S_AUTH_ARGSPEC options in ``params``.

    Raises K8sError with what to do when no configuration can be loaded.
    """
    if not HAS_K8S:
        raise K8sError(missing_library_message())
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    kubeconfig = params.get("kubeconfig")
    context = params.get("context")
    host = params.get("host")
    try:
        _check_kubeconfig(kubeconfig)
        if isinstance(kubeconfig, dict):
            config.load_kube_config_from_dict(kubeconfig, context=context, client_configuration=configuration)
        elif kubeconfig:
            config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=configuration)
        elif not host:
            try:
                config.load_kube_config(context=context, client_configuration=configuration)
            except (ConfigException, OSError):
                if context:
                    raise
                config.load_incluster_config(client_configuration=configuration)
    except InputError as exc:
        raise K8sError(str(exc))
    except (ConfigException, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise K8sError(
            "Could not load the Kubernetes configuration (%s): give kubeconfig (a path or a dict) and context, "
            "or host and api_key, or set K8S_AUTH_KUBECONFIG." % _no_secrets(exc))
    except Exception as exc:  # pylint: disable=broad-except  # yaml.YAMLError from the client's own loader
        if type(exc).__module__.startswith("yaml"):
            raise K8sError(yaml_error_message(exc, "The kubeconfig"))
        raise

    if host:
        configuration.host = host
    if params.get("api_key"):
        configuration.api_key = {"authorization": "Bearer %s" % params["api_key"]}
        configuration.api_key_prefix = {}
    if params.get("validate_certs") is not None:
        configuration.verify_ssl = _truthy(params["validate_certs"])
    for option, attribute in (("ca_cert", "ssl_ca_cert"), ("client_cert", "cert_file"), ("client_key", "key_file")):
        if params.get(option):
            setattr(configuration, attribute, params[option])
    if params.get("proxy"):
        configuration.proxy = params["proxy"]
    if params.get("no_proxy"):
        configuration.no_proxy = params["no_proxy"]

    configuration.retries = _retries()
    api_client = client.ApiClient(configuration)
    if params.get("impersonate_user"):
        api_client.set_default_header("Impersonate-User", params["impersonate_user"])
    return api_client


def exec_returncode(status_text) -> int:
    """The exit code of an exec from the JSON Status the API server sends on the exec's status channel (3).

    ``Success`` is 0; a command that exited non-zero is ``Failure``/``NonZeroExitCode`` with the code in
    ``details.causes[].message`` (cause ``ExitCode``). Any other Status (no such container, the exec refused, no
    Status at all) raises K8sError with the server's message: the command did not run to an exit code.
    """
    try:
        status = json.loads(status_text) if status_text else {}
    except ValueError:
        status = {}
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).lstrip("-").isdigit():
            return int(cause["message"])
    raise K8sError("The exec ended without an exit code: %s" % (
        status.get("message") or status_text or "the API server sent no status (the connection closed early)"))


def pod_exec(api_client, namespace, pod, argv, container=None, timeout=None):
    """Run ``argv`` (no shell) in ``container`` of ``pod`` through pods/exec; return ``(rc, stdout, stderr)``.

    Only the websocket client is used: the typed CoreV1Api that kubernetes.core.k8s_exec imports (through the
    deprecated ``kubernetes.client.apis``, which loads every API group and its models) costs seconds of CPU per
    call and nothing an exec needs. ``timeout`` (seconds, None: until the command ends) bounds the wait; on expiry
    K8sError says the command may still be running in the Pod. Raises K8sError when the exec cannot start.
    """
    from kubernetes.stream import ws_client

    configuration = api_client.configuration
    query = [("command", arg) for arg in argv]
    query += [("stdout", "true"), ("stderr", "true"), ("stdin", "false"), ("tty", "false")]
    if container:
        query.append(("container", container))
    url = "%s/api/v1/namespaces/%s/pods/%s/exec" % (configuration.host.rstrip("/"), quote(namespace, safe=""),
                                                    quote(pod, safe=""))
    token = configuration.get_api_key_with_prefix("authorization")  # also refreshes an exec plugin's token
    what = "pods/exec of %s/%s" % (namespace, pod)
    try:
        client = ws_client.websocket_call(configuration, "GET", url, query_params=query, _preload_content=False,
                                          headers={"authorization": token} if token else {})
    except ApiException as exc:  # the websocket client reports every failure to connect so, with status 0
        raise K8sError("Could not start %s on %s (%s): check that the Pod is running and that the credentials in use "
                       "may create pods/exec in %s." % (what, configuration.host, _no_secrets(exc), namespace))
    try:
        client.run_forever(timeout=timeout)
        if client.is_open():
            raise K8sError("%s did not end within %s s: the command may still be running in the Pod; look at it "
                           "before running again." % (what, timeout))
        return exec_returncode(client.read_channel(3)), client.read_channel(1), client.read_channel(2)
    finally:
        client.close()


# kind -> (API path prefix, plural, namespaced)
# The kinds the collection reads or writes without an API discovery round trip: kind -> (API path prefix, plural,
# namespaced). K8sReader reads them; k8s_objects (helm_adopt, kots_cleanup) also patches and deletes them.
KIND_PATHS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Pod": ("/api/v1", "pods", True),
    "Service": ("/api/v1", "services", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims", True),
    "Endpoints": ("/api/v1", "endpoints", True),
    "LimitRange": ("/api/v1", "limitranges", True),
    "ResourceQuota": ("/api/v1", "resourcequotas", True),
    "PersistentVolume": ("/api/v1", "persistentvolumes", False),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "Job": ("/apis/batch/v1", "jobs", True),
    "CronJob": ("/apis/batch/v1", "cronjobs", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets", True),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "PriorityClass": ("/apis/scheduling.k8s.io/v1", "priorityclasses", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ValidatingWebhookConfiguration": ("/apis/admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", False),
    "MutatingWebhookConfiguration": ("/apis/admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", False),
}


def send_request(api_client, path, method, query=None, headers=None, body=None, request_timeout=REQUEST_TIMEOUT):
    """The response body (bytes) of one request to ``path`` through ``api_client`` (its host, TLS settings, retries
    and credentials, an exec plugin's token refreshed); ApiException for an error status.

    The typed APIs (CoreV1Api, AppsV1Api, ...) are not used: since kubernetes 33 importing one builds hundreds of
    pydantic models, over a second of CPU per module run, for objects this collection reads as plain JSON anyway.
    Works with both client generations (``param_serialize`` appeared with openapi-generator 7, kubernetes 33).
    """
    headers = dict(headers or {}, Accept="application/json")
    timeout = timeout_pair(request_timeout)
    if hasattr(api_client, "param_serialize"):
        method, url, headers, body, post = api_client.param_serialize(
            method=method, resource_path=path, query_params=list(query or []), header_params=headers, body=body,
            auth_settings=["BearerToken"])
        response = api_client.call_api(method, url, header_params=headers, body=body, post_params=post,
                                       _request_timeout=timeout)
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        return response.data
    response = api_client.call_api(path, method, query_params=list(query or []), header_params=headers, body=body,
                                   auth_settings=["BearerToken"], _preload_content=False, _request_timeout=timeout)
    return (response[0] if isinstance(response, tuple) else response).data


def _status(exc):
    return getattr(exc, "status", None)


def describe_api_error(exc, what, host=None, request_timeout=None) -> str:
    """A sentence for a failed read: what failed, against which endpoint, and what to check."""
    status = _status(exc)
    if status is None and is_timeout(exc):
        return ("The Kubernetes API server %s did not answer within request_timeout (%g s) while reading %s: check "
                "that the cluster is up and that kubeconfig/context/host point at it; raise request_timeout (or "
                "CIRCLECI_SERVER_K8S_REQUEST_TIMEOUT) if it is only slow." % (
                    host or "(unknown host)", request_timeout or REQUEST_TIMEOUT, what))
    if status in (401, 403):
        return ("Reading %s was refused (HTTP %s): the credentials in use lack read access; "
                "use a kubeconfig or token allowed to get and list it." % (what, status))
    if status is None:
        return ("Could not reach the Kubernetes API server %s while reading %s (%s): check that the cluster is up, "
                "that kubeconfig/context/host point at it and that the network allows it." % (
                    host or "", what, _no_secrets(exc)))
    reason = getattr(exc, "reason", "") or ""
    return "Reading %s failed (HTTP %s %s): check the API server's health and retry." % (what, status, reason)


def is_timeout(exc) -> bool:
    text = "%s %s" % (type(exc).__name__, exc)
    return "timeout" in text.lower() or "timed out" in text.lower()


class K8sReader:
    """Read-only access to a cluster (plain GETs to the standard paths, ``send_request``), returning JSON dicts.

    Only GET requests are ever sent. ``get`` returns None for a missing object; every other failure raises
    K8sError with a message that says what to check.
    """

    def __init__(self, api_client, request_timeout=REQUEST_TIMEOUT):
        self.api_client = api_client
        self.request_timeout = request_timeout
        # After one request timed out, the others fail at once: a module's reads together stay in one budget.
        self._timed_out = None

    @classmethod
    def from_params(cls, params):
        return cls(api_client_from_params(params), request_timeout_from_params(params))

    @property
    def host(self):
        return getattr(getattr(self.api_client, "configuration", None), "host", None)

    def _call(self, what, path, query=None):
        if self._timed_out:
            raise K8sError(self._timed_out)
        try:
            return json.loads(send_request(self.api_client, path, "GET", query, request_timeout=self.request_timeout)
                              or b"null")
        except ApiException as exc:
            if _status(exc) == 404:
                return None
            raise K8sError(describe_api_error(exc, what, self.host, self.request_timeout))
        except Exception as exc:  # urllib3 errors do not all derive from OSError  pylint: disable=broad-except
            if not isinstance(exc, (OSError, ValueError)) and not type(exc).__module__.startswith("urllib3"):
                raise
            message = describe_api_error(exc, what, self.host, self.request_timeout)
            if is_timeout(exc):
                self._timed_out = message
            raise K8sError(message)

    def version(self) -> dict:
        """The API server's /version document (gitVersion, major, minor, ...)."""
        result = self._call("the server version", "/version")
        if result is None:
            raise K8sError("The API server has no /version endpoint: is the host really a Kubernetes API server?")
        return result

    def _kind(self, kind):
        try:
            return KIND_PATHS[kind]
        except KeyError:
            raise K8sError("K8sReader does not know the kind %s; use get_custom/list_custom." % kind)

    @staticmethod
    def _path(prefix, plural, namespace=None, name=None):
        path = "%s/namespaces/%s/%s" % (prefix, quote(namespace, safe=""), plural) if namespace else "%s/%s" % (prefix, plural)
        return "%s/%s" % (path, quote(name, safe="")) if name else path

    def get(self, kind, name, namespace=None):
        """One object as a dict, or None when it does not exist."""
        prefix, plural, namespaced = self._kind(kind)
        what = "%s %s%s" % (kind, ("%s/" % namespace) if namespaced else "", name)
        return self._call(what, self._path(prefix, plural, namespace if namespaced else None, name))

    def list(self, kind, namespace=None, label_selector=None):
        """The items of a kind (in a namespace when namespaced), optionally filtered by a label selector."""
        prefix, plural, namespaced = self._kind(kind)
        query = [("labelSelector", label_selector)] if label_selector else []
        what = "the %ss in %s" % (kind, ("namespace %s" % namespace) if namespace else "the cluster")
        result = self._call(what, self._path(prefix, plural, namespace if namespaced else None), query)
        return (result or {}).get("items") or []

    def get_custom(self, group, version, plural, name, namespace):
        what = "%s.%s %s/%s" % (plural, group, namespace, name)
        return self._call(what, self._path("/apis/%s/%s" % (group, version), plural, namespace, name))

    def list_custom(self, group, version, plural, namespace, label_selector=None):
        """Custom objects in a namespace; [] when the CRD is not installed (the API answers 404)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        what = "the %s.%s in namespace %s" % (plural, group, namespace)
        result = self._call(what, self._path("/apis/%s/%s" % (group, version), plural, namespace), query)
        return (result or {}).get("items") or []


def label_selector(labels) -> str:
    """'a=b,c=d' from a dict; a string passes through."""
    if isinstance(labels, dict):
        return ",".join("%s=%s" % (k, v) for k, v in sorted(labels.items()))
    return labels or ""


def decode_secret_data(secret) -> dict:
    """A Secret's data, base64-decoded: {key: bytes}. stringData is merged in for fakes and odd servers."""
    data = {}
    for key, value in ((secret or {}).get("data") or {}).items():
        try:
            data[key] = base64.b64decode(value or "", validate=False)
        except (ValueError, TypeError):
            data[key] = None
    for key, value in ((secret or {}).get("stringData") or {}).items():
        data[key] = (value or "").encode("utf-8")
    return data


def read_secret(reader, namespace, name):
    """The decoded data of Secret ``namespace/name`` ({key: bytes}, a bad base64 value gives None), or None."""
    secret = reader.get("Secret", name, namespace)
    if secret is None:
        return None
    return decode_secret_data(secret)


def list_by_label(reader, kind, namespace, labels):
    """Objects of ``kind`` in ``namespace`` whose labels match ``labels`` (dict or selector string)."""
    return reader.list(kind, namespace, label_selector=label_selector(labels))


_GZIP_MAGIC = b"\x1f\x8b\x08"
_HELM_SECRET_RE = re.compile(r"^sh\.helm\.release\.v1\.(?P<release>.+)\.v(?P<revision>\d+)$")


class HelmReleaseError(K8sError):
    """A helm release that is missing or cannot be decoded."""


def decode_helm_release(payload):
    """Decode the ``release`` field of a helm 3 storage Secret (already base64-decoded once by the API layer).

    helm stores base64(gzip(json)) (or base64(json) from very old versions) in the Secret's data.
    """
    if isinstance(payload, str):
        payload = payload.encode("ascii")
    try:
        raw = base64.b64decode(payload)
    except (ValueError, TypeError) as exc:
        raise HelmReleaseError("The helm release record is not base64 (%s)" % exc)
    if raw[:3] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise HelmReleaseError("The helm release record is not valid gzip (%s)" % exc)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HelmReleaseError("The helm release record is not JSON (%s)" % exc)


def helm_release_secrets(reader, namespace, release):
    """The release's storage Secrets, newest revision first, as (revision, status, secret) tuples."""
    secrets = reader.list("Secret", namespace, label_selector="owner=helm,name=%s" % release)
    found = []
    for secret in secrets:
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        match = _HELM_SECRET_RE.match(meta.get("name") or "")
        if secret.get("type") not in (None, "helm.sh/release.v1") or not match or match.group("release") != release:
            continue
        revision = int(labels.get("version") or match.group("revision"))
        found.append((revision, labels.get("status"), secret))
    found.sort(key=lambda item: item[0], reverse=True)
    return found


def helm_release(reader, namespace, release, revision=None):
    """The decoded helm 3 release record (name, version, info, chart, config, ...) of ``release``.

    ``revision=None`` picks the newest revision whose status is ``deployed`` (what ``helm list`` shows),
    or the newest revision when none is deployed. Raises HelmReleaseError when there is none.
    """
    secrets = helm_release_secrets(reader, namespace, release)
    if not secrets:
        raise HelmReleaseError(
            "No helm release '%s' in namespace %s (no Secret labelled owner=helm,name=%s): check the namespace "
            "and release name (helm list -n %s), and that the credentials may read Secrets there." % (
                release, namespace, release, namespace))
    if revision is not None:
        chosen = [item for item in secrets if item[0] == int(revision)]
        if not chosen:
            raise HelmReleaseError("Helm release '%s' in namespace %s has no revision %s (revisions: %s)." % (
                release, namespace, revision, ", ".join(str(item[0]) for item in secrets)))
    else:
        chosen = [item for item in secrets if item[1] == "deployed"] or secrets
    data = decode_secret_data(chosen[0][2])
    if not data.get("release"):
        raise HelmReleaseError("The helm release Secret %s has no 'release' data." % chosen[0][2]["metadata"]["name"])
    return decode_helm_release(data["release"])


def helm_release_values(reader, namespace, release, revision=None) -> dict:
    """The user-supplied values of a helm release (what ``helm get values`` prints), {} when none."""
    return helm_release(reader, namespace, release, revision).get("config") or {}


def helm_chart_version(record) -> str:
    """The chart version of a decoded release record, e.g. '4.2.7'."""
    return (((record or {}).get("chart") or {}).get("metadata") or {}).get("version")


def dig(values, dotted, default=None):
    """values['a']['b'] for 'a.b', or default when any level is missing."""
    current = values
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return default
        current = current[part]
    return current


def release_summary(reader, namespace, release) -> dict:
    """What ``helm list`` shows of a release, never its values: exists, revision, status, chart_version, ..."""
    summary = {"exists": False, "name": release, "namespace": namespace, "revision": None, "status": None,
               "chart_version": None, "app_version": None, "updated": None, "revisions": []}
    secrets = helm_release_secrets(reader, namespace, release)
    if not secrets:
        return summary
    summary["revisions"] = [{"revision": rev, "status": status} for rev, status, _secret in secrets]
    record = helm_release(reader, namespace, release)
    metadata = (record.get("chart") or {}).get("metadata") or {}
    info = record.get("info") or {}
    summary.update(exists=True, revision=record.get("version"), status=info.get("status"),
                   chart_version=metadata.get("version"), app_version=metadata.get("appVersion"),
                   updated=info.get("last_deployed"))
    return summary


def normalise_kubernetes_version(version_doc) -> str:
    """'1.27.9' from a /version document ('v1.27.9-eks-5e0fdde', or major '1' minor '27+')."""
    git_version = (version_doc or {}).get("gitVersion") or ""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", git_version)
    if match:
        return "%s.%s.%s" % match.groups()
    major = re.sub(r"\D", "", str((version_doc or {}).get("major") or ""))
    minor = re.sub(r"\D", "", str((version_doc or {}).get("minor") or ""))
    if not major or not minor:
        raise K8sError("The API server reported no usable version (%r): is the host really a Kubernetes API server?"
                       % (version_doc,))
    return "%s.%s.0" % (major, minor)
