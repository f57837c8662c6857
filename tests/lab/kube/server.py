"""A Kubernetes API server stand-in that kubectl 1.31, helm 3.17, the kubernetes Python client and
the kubernetes.core modules accept (plain HTTP on 127.0.0.1, aiohttp in its own thread and loop).

It serves what those clients ask for, in the order they ask:
- discovery: ``/version`` (a version the lab sets), ``/api``, ``/apis``, ``/api/v1``,
  ``/apis/<group>``, ``/apis/<group>/<version>`` (APIResourceLists with subresources);
- an ``/openapi/v3`` index whose per-group-version documents declare PATCH with
  ``x-kubernetes-group-version-kind`` and the ``fieldValidation`` parameter, so that kubectl and
  helm leave validation to the server and skip client-side schema validation;
- the resources of ``resources.py`` (and those CRDs add): list (``kind: <Kind>List``, label and
  field selectors, server-side Tables for ``kubectl get``), watch (newline-delimited events after a
  resourceVersion, ``timeoutSeconds``, ``sendInitialEvents`` ending with the initial-events-end
  BOOKMARK), create, get, replace, the four patch types, delete (also of a collection), ``dryRun=All``,
  the ``status`` and ``scale`` subresources, ``pods/log`` (lines scripted per workload, ``set_logs``),
  ``pods/exec`` over WebSocket (``printenv`` from the pod spec, other commands scripted, ``set_exec``; stdin
  of ``exec -i`` read until kubectl closes it, for a scripted callable that takes it);
- JSON and YAML bodies, and protobuf bodies (``k8s\\0`` envelope) through ``protobuf.decode_object``;
- instant controllers (``controllers.py``), so that ``--wait`` returns at once, and Pod states a
  test can script (``set_pod_state``: CrashLoopBackOff, Pending, Failed) to make a rollout or a Job fail.

The lab drives it without HTTP through ``create``/``get``/``list``/``replace``/``delete``/``reset``,
``set_version``, ``set_logs``, ``set_exec`` and ``set_pod_state``; those calls are not logged.

Every request first asks the lab's FaultInjector (service ``kube``), and every request is given to the
RequestLog (which keeps the mutating ones) when it arrives, then its status when the handler ends (499
when the client hung up before any answer), with its query string, so that dry runs
(``dryRun=All``) can be told apart from writes; ``pods/exec`` is logged as a POST (its API verb is
``create``, and a command may change anything). Fault rules match that same path (query included).

Not modelled: TLS, authentication and RBAC (any bearer token is accepted), aggregated discovery
(clients fall back to the legacy endpoints), OpenAPI v2 and schemas (the v3 documents carry
operations only), admission webhooks, exec over SPDY and exec tty (stdin is read whole before the command runs; an exec without stdin
answers after EXEC_START_SECONDS, the kubelet's part of a real exec, whatever the command), attach, port-forward,
eviction (``kubectl drain``), the metrics API, Tables for watches (``kubectl get -w``), protobuf
responses (answers are always JSON), list pagination, API priority and fairness. Timestamps are
wall-clock UTC.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone

import yaml
from aiohttp import web

from .. import yaml_c
from .controllers import Controllers
from .patch import APPLY_PATCH, PATCH_TYPES
from .resources import VELERO_BACKUP_CRD, Registry, ResourceType
from .store import ApiError, Store, dotted, match_fields, match_labels, parse_field_selector, parse_label_selector, scale_of, status_body

SERVICE = "kube"
LOG = logging.getLogger(__name__)
PROTOBUF = "application/vnd.kubernetes.protobuf"
# A real exec's first byte comes after the API server reached the kubelet and the runtime started the process: tens
# of milliseconds after the WebSocket upgrade. client-go's WebSocket executor (kubectl >= 1.30) depends on that: it
# starts reading the connection before it registers its streams, and drops a frame of a stream it has not registered
# yet ("Unknown stream id 3, discarding message"; tools/remotecommand/websocket.go, readDemuxLoop), so an answer sent
# at once can lose the exit status under load. An exec with stdin needs no wait: kubectl registers every stream
# before it sends any.
EXEC_START_SECONDS = 0.1
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


# The request key under which _answered keeps the status a streamed answer was sent with.
_ANSWERED = web.RequestKey("lab_answered_status", int)


class KubeApiServer:
    """The lab's Kubernetes API server; see the module docstring for what it serves."""

    def __init__(self, clock, request_log, faults, kubernetes_version: str = "1.27.9", platform: str = "eks",
                 load_balancer: str | None = None, nodes=("lab-node-1", "lab-node-2", "lab-node-3"),
                 velero: bool = True, region: str = "us-east-1", watch_poll: float = 0.05):
        self.clock = clock
        self.request_log = request_log
        self.faults = faults
        self.platform = platform
        self.nodes = tuple(nodes)
        self.velero = velero
        self.watch_poll = watch_poll
        self.registry = Registry()
        self.store = Store(self.registry)
        self.controllers = Controllers(self.store, load_balancer or ("ip" if platform == "gke" else "hostname"), region)
        self.store.controllers = self.controllers
        self._logs: list = []
        self._execs: list = []
        self._version = ""
        self.set_version(kubernetes_version)
        self._thread = None
        self._loop = None
        self._runner = None
        self._stopping = threading.Event()
        self.url = None
        self.reset()

    # ------------------------------------------------------------------ lab-facing API
    def set_version(self, version: str) -> None:
        """The Kubernetes version the cluster reports (``/version``, nodes' kubelet version)."""
        self._version = version.lstrip("v")
        self.controllers.kubelet_version = "v" + self._version
        with self.store.lock:
            node_type = self.registry.by_plural("", "v1", "nodes")
            for node in self.store.iter_raw("", "nodes"):
                node = json.loads(json.dumps(node))
                node["status"]["nodeInfo"]["kubeletVersion"] = self._git_version()
                self.store.put(node_type, node)

    @property
    def version(self) -> str:
        return self._version

    def _git_version(self) -> str:
        suffix = {"eks": "-eks-lab", "gke": "-gke.lab"}.get(self.platform, "")
        return "v%s%s" % (self._version, suffix)

    def set_logs(self, namespace: str, selector_or_prefix: str, lines) -> None:
        """Script the log of the pods of a workload: a pod-name prefix, or a label selector (``app=x``)."""
        if isinstance(lines, str):
            lines = lines.splitlines()
        if not callable(lines):
            # A callable ``lines(pod) -> list`` scripts logs that change with time or the pod's version.
            lines = [str(line) for line in lines]
        self._logs = [entry for entry in self._logs if entry[:2] != (namespace, selector_or_prefix)]
        self._logs.append((namespace, selector_or_prefix, lines))

    def set_pod_state(self, namespace: str, prefix: str, state: str | None, image: str | None = None) -> None:
        """Script the Pods whose name starts with ``prefix`` (and, with ``image``, that run an image
        starting with it, e.g. only the new version of an upgrade): ``Running`` (the default),
        ``CrashLoopBackOff``, ``Pending``, ``Failed`` or ``Succeeded``; None removes the rule. Existing
        Pods change at once and their Deployment/StatefulSet/DaemonSet/Job status follows (a Job whose
        Pod failed is Failed, a rollout whose new Pods are not Ready keeps old Pods)."""
        self.controllers.set_pod_state(namespace, prefix, state, image)

    def set_exec(self, namespace: str, pod_prefix: str, command: str, stdout: str = "", stderr: str = "",
                 exit_code: int = 0) -> None:
        """Script ``kubectl exec`` in the pods whose name starts with ``pod_prefix``: a command line
        (argv joined with spaces) that starts with ``command`` prints ``stdout``/``stderr`` and exits
        with ``exit_code``. ``printenv``/``env`` (the container's env, references resolved), ``hostname``,
        ``true`` and ``false`` work without a script; any other command exits 127. ``stdout`` may instead be a
        callable ``(pod, container, argv) -> (stdout, stderr, exit_code)``, for stand-ins with state."""
        self._execs = [e for e in self._execs if e[:3] != (namespace, pod_prefix, command)]
        self._execs.append((namespace, pod_prefix, command, stdout, stderr, int(exit_code)))

    def exec_result(self, pod: dict, container: str | None, argv: list, stdin: bytes | None = None) -> tuple[str, str, int]:
        """(stdout, stderr, exit code) of a command run in a pod of the lab; ``stdin``: what ``exec -i`` sent,
        given to a scripted callable that sets ``takes_stdin`` (others never see it)."""
        line = " ".join(argv)
        best = None
        for namespace, prefix, command, stdout, stderr, code in self._execs:
            if namespace == pod["metadata"].get("namespace") and pod["metadata"]["name"].startswith(prefix) and line.startswith(command):
                if best is None or (len(prefix), len(command)) > best[0]:
                    best = ((len(prefix), len(command)), (stdout, stderr, code))
        if best is not None:
            if callable(best[1][0]):  # a stateful stand-in answers (tests/lab/datastores.py)
                if getattr(best[1][0], "takes_stdin", False):
                    return best[1][0](pod, container, argv, stdin)
                return best[1][0](pod, container, argv)
            return best[1]
        if argv and argv[0] in ("printenv", "env") and len(argv) <= 2:
            env = self._container_env(pod, container)
            if len(argv) == 2:
                return (env[argv[1]] + "\n", "", 0) if argv[1] in env else ("", "", 1)
            return ("".join("%s=%s\n" % kv for kv in env.items()), "", 0)
        if argv == ["hostname"]:
            return pod["metadata"]["name"] + "\n", "", 0
        if argv in (["true"], ["false"]):
            return "", "", int(argv == ["false"])
        return "", "lab: %s: command not scripted (KubeApiServer.set_exec)\n" % (argv[0] if argv else ""), 127

    def _container_env(self, pod: dict, container: str | None) -> dict:
        containers = (pod.get("spec") or {}).get("containers") or []
        spec = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
        namespace = pod["metadata"].get("namespace")
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": pod["metadata"]["name"],
               "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": "/root"}
        for entry in spec.get("env") or []:
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
                continue
            source = entry.get("valueFrom") or {}
            value = None
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.get("v1", "Secret", namespace, ref.get("name", "")) or {}
                raw = (secret.get("data") or {}).get(ref.get("key", ""))
                value = base64.b64decode(raw).decode(errors="replace") if raw is not None else None
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                value = ((self.get("v1", "ConfigMap", namespace, ref.get("name", "")) or {}).get("data") or {}).get(ref.get("key", ""))
            elif "fieldRef" in source:
                value = dotted(pod, source["fieldRef"].get("fieldPath", ""))
            if value is not None:
                env[entry["name"]] = str(value)
        return env

    def logs_for(self, pod: dict) -> list:
        namespace = pod["metadata"].get("namespace")
        name = pod["metadata"]["name"]
        best, best_len = [], -1
        for ns, key, lines in self._logs:
            if ns != namespace:
                continue
            if "=" in key or key.startswith("!"):
                if match_labels(pod["metadata"].get("labels"), parse_label_selector(key)) and best_len < 0:
                    best, best_len = lines, 0
            elif name.startswith(key) and len(key) > best_len:
                best, best_len = lines, len(key)
        return best(pod) if callable(best) else best

    def reset(self) -> None:
        """An empty cluster: the default namespaces, the nodes, the ``kubernetes`` Service, Velero's CRD."""
        with self.store.lock:
            self.store.reset()
            self.registry.reset()
            self._logs = []
            self._execs = []
            self.controllers.pod_states = []
            self.controllers.pod_state_hooks = []
            for namespace in DEFAULT_NAMESPACES:
                self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
            for index, name in enumerate(self.nodes):
                self.create(self._node(name, index))
            self.create({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": "kubernetes", "namespace": "default",
                                      "labels": {"component": "apiserver", "provider": "kubernetes"}},
                         "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "targetPort": 443}]}})
            if self.velero:
                self.create(VELERO_BACKUP_CRD)

    def _node(self, name: str, index: int) -> dict:
        zone = "%s%s" % (self.controllers.region, "abc"[index % 3]) if self.platform != "gke" else "us-central1-%s" % "abc"[index % 3]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                      "kubernetes.io/arch": "amd64", "topology.kubernetes.io/zone": zone,
                                                      "node.kubernetes.io/instance-type": "m5.xlarge"}},
                "spec": {"providerID": "lab://%s" % name},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet is posting ready status"}],
                           "addresses": [{"type": "InternalIP", "address": "10.0.0.%d" % (10 + index)},
                                         {"type": "Hostname", "address": name}],
                           "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                           "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                           "nodeInfo": {"kubeletVersion": self._git_version(), "operatingSystem": "linux", "architecture": "amd64",
                                        "containerRuntimeVersion": "containerd://1.7.11", "osImage": "Lab Linux"}}}

    def _rtype(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.registry.by_kind(api_version, kind)
        if rtype is None:
            raise KeyError("the lab cluster does not serve %s %s" % (api_version, kind))
        return rtype

    def create(self, obj: dict) -> dict:
        """Create an object without HTTP (scenario seeding). A missing namespace is created; a given
        ``metadata.creationTimestamp`` and ``status`` are kept (controllers may still fill status)."""
        rtype = self._rtype(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if rtype.namespaced else None
        if rtype.namespaced:
            namespace = namespace or "default"
            ns_type = self.registry.by_plural("", "v1", "namespaces")
            if self.store.raw(ns_type, None, namespace) is None:
                self.store.create(ns_type, None, {"metadata": {"name": namespace}})
        with self.store.lock:
            created = self.store.create(rtype, namespace, obj)
            stored = self.store.raw(rtype, namespace, created["metadata"]["name"])
            if meta.get("creationTimestamp"):
                stored["metadata"]["creationTimestamp"] = meta["creationTimestamp"]
            if obj.get("status") and rtype.custom:
                stored["status"] = json.loads(json.dumps(obj["status"]))
            return self.store.get(rtype, namespace, created["metadata"]["name"])

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        rtype = self._rtype(api_version, kind)
        try:
            return self.store.get(rtype, namespace if rtype.namespaced else None, name)
        except ApiError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list:
        return self.store.list(self._rtype(api_version, kind), namespace, label_selector)[0]

    def replace(self, obj: dict) -> dict:
        """Replace an object without HTTP and without a resourceVersion check; status is taken as given."""
        rtype = self._rtype(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if rtype.namespaced else None
        with self.store.lock:
            result = self.store.update(rtype, namespace, meta["name"], obj, check_rv=False)
            if "status" in obj and "status" in rtype.subresources:
                result = self.store.update(rtype, namespace, meta["name"], obj, subresource="status", check_rv=False)
            return result

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, propagation: str = "Background") -> dict | None:
        rtype = self._rtype(api_version, kind)
        try:
            return self.store.delete(rtype, namespace if rtype.namespaced else None, name, propagation)
        except ApiError:
            return None

    # ------------------------------------------------------------------ lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        errors: list = []
        self._stopping.clear()

        def serve():
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                app = web.Application(client_max_size=64 * 1024 * 1024)
                app.router.add_route("*", "/{tail:.*}", self._handle)
                app.on_response_prepare.append(self._answered)
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, host, port)
                loop.run_until_complete(site.start())
                self._runner = runner
                bound = site._server.sockets[0].getsockname()  # pylint: disable=protected-access
                self.url = "http://%s:%d" % (bound[0], bound[1])
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="lab-kube-apiserver", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            self._thread.join()
            self._thread = None
            raise errors[0]
        return self.url

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        loop = self._loop
        if self._runner is not None and loop is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            except (RuntimeError, asyncio.TimeoutError, TimeoutError):
                pass
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = None
        self._runner = None
        self._loop = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path_qs = request.path_qs
        # pods/exec is the "create" verb of the API even when it arrives as a WebSocket GET, and a
        # command run in a pod may change anything: the log keeps it as a write. It is recorded on
        # arrival: kubectl exits once it has the exec's status frame, before this handler ends.
        method = "POST" if request.path.endswith("/exec") else request.method
        token = self.request_log.begin(SERVICE, method, path_qs)
        status = None
        try:
            fault = self.faults.check(SERVICE, request.method, path_qs)
            if fault is not None:
                response = _json(status_body(fault.status, _reason(fault.status), fault.message), fault.status)
            else:
                try:
                    response = await self._dispatch(request)
                except ApiError as exc:
                    response = _json(exc.status(), exc.code)
                except Exception as exc:  # pylint: disable=broad-except
                    # A bug of the stand-in must reach the client as a Status (and the log), not as a dropped connection.
                    LOG.exception("lab kube: %s %s failed", request.method, path_qs)
                    response = _json(status_body(500, "InternalError", "lab kube stand-in error: %r" % exc), 500)
            status = response.status
            return response
        except asyncio.CancelledError:
            # The client hung up and aiohttp cancelled the handler: the status it was sent, if any, else 499.
            status = request.get(_ANSWERED, 499)
            raise
        finally:
            self.request_log.end(token, status)

    @staticmethod
    async def _answered(request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's on_response_prepare: the status a streamed answer (exec, watch) went out with."""
        request[_ANSWERED] = response.status

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if method == "GET":
            discovery = self._discovery(parts)
            if discovery is not None:
                return _json(discovery)
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rtype, namespace, name, sub = self._route(group, version, rest)
        query = request.query
        if sub == "exec" and method in ("GET", "POST"):
            return await self._exec(request, self.store.get(rtype, namespace, name))
        if method == "GET":
            if name is None:
                if query.get("watch") in ("1", "true"):
                    return await self._watch(request, rtype, namespace)
                return self._list(request, rtype, namespace)
            return self._get(request, rtype, namespace, name, sub)
        dry_run = query.get("dryRun") == "All"
        if method == "POST" and name is None:
            body = await self._body(request, rtype)
            created = self.store.create(rtype, namespace, body, dry_run)
            return _json(created, 201)
        if method == "PUT" and name is not None:
            body = await self._body(request, rtype if sub != "scale" else None)
            result = self.store.update(rtype, namespace, name, body, sub, dry_run)
            return _json(scale_of(rtype, result) if sub == "scale" else result)
        if method == "PATCH" and name is not None:
            content_type = request.content_type
            if content_type not in PATCH_TYPES:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types "
                               "include: " + ", ".join(PATCH_TYPES))
            patch = await self._body(request, None)
            if content_type == APPLY_PATCH and sub is None and query.get("fieldManager") is None:
                raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                               "is required for apply patch")
            result, created = self.store.patch(rtype, namespace, name, content_type, patch, sub, dry_run)
            return _json(result, 201 if created else 200)
        if method == "DELETE":
            options = await self._delete_options(request)
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                propagation = "Orphan"
            dry_run = dry_run or "All" in (options.get("dryRun") or [])
            if name is None:
                items, _rv = self.store.list(rtype, namespace, query.get("labelSelector"), query.get("fieldSelector"))
                for item in items:
                    self.store.delete(rtype, namespace, item["metadata"]["name"], propagation, dry_run)
                return _json({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                              "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items})
            deleted = self.store.delete(rtype, namespace, name, propagation, dry_run, options.get("preconditions"))
            if rtype.kind in ("Pod", "Namespace", "CustomResourceDefinition") and not rtype.custom:
                return _json(deleted)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": {"name": name, "group": rtype.group, "kind": rtype.plural,
                                      "uid": deleted["metadata"].get("uid")}})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _route(self, group: str, version: str, rest: list):
        """(type, namespace, name, subresource) of a resource path below /api/v1 or /apis/<g>/<v>."""
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        rtype = self.registry.by_plural(group, version, rest[0])
        if rtype is None or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and not rtype.namespaced:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rtype.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub is not None and sub not in rtype.subresources and not (sub == "finalize" and rtype.kind == "Namespace"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rtype, namespace, name, sub

    async def _body(self, request: web.Request, rtype):
        raw = await request.read()
        content_type = request.content_type
        if content_type == PROTOBUF or raw[:4] == b"k8s\x00":
            try:
                from .protobuf import decode_object  # pylint: disable=import-outside-toplevel
            except ImportError as exc:
                raise ApiError(415, "UnsupportedMediaType", "protobuf bodies are not supported by this lab build") from exc
            try:
                return decode_object(raw)
            except ValueError as exc:
                raise ApiError(415, "UnsupportedMediaType", "cannot decode the protobuf body: %s" % exc) from exc
        try:
            if content_type in ("application/yaml", APPLY_PATCH):
                body = yaml_c.safe_load(raw.decode() or "null")
            else:
                body = json.loads(raw.decode() or "null")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", "the body of the request cannot be decoded: %s" % exc) from exc
        if body is None:
            raise ApiError(400, "BadRequest", "the request has an empty body")
        del rtype
        return body

    async def _delete_options(self, request: web.Request) -> dict:
        if not request.can_read_body:
            return {}
        raw = await request.read()
        if not raw:
            return {}
        try:
            if request.content_type == PROTOBUF or raw[:4] == b"k8s\x00":
                from .protobuf import decode_object  # pylint: disable=import-outside-toplevel
                options = decode_object(raw)
            else:
                options = json.loads(raw.decode())
        except (ImportError, ValueError):
            # DeleteOptions are optional; an unreadable body means the defaults, like an empty one.
            return {}
        return options if isinstance(options, dict) else {}

    def _get(self, request: web.Request, rtype: ResourceType, namespace, name: str, sub):
        obj = self.store.get(rtype, namespace, name)
        if sub == "scale":
            return _json(scale_of(rtype, obj))
        if sub == "log":
            lines = self.logs_for(obj)
            tail = request.query.get("tailLines")
            if tail is not None and tail.lstrip("-").isdigit() and int(tail) >= 0:
                lines = lines[len(lines) - int(tail):] if int(tail) else []
            text = "".join(line + "\n" for line in lines)
            return web.Response(text=text, content_type="text/plain")
        if _wants_table(request):
            return _json(self._table(rtype, [obj], self.store.resource_version, request))
        return _json(obj)

    def _list(self, request: web.Request, rtype: ResourceType, namespace):
        items, rv = self.store.list(rtype, namespace, request.query.get("labelSelector"), request.query.get("fieldSelector"))
        if _wants_table(request):
            return _json(self._table(rtype, items, rv, request))
        return _json({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": {"resourceVersion": str(rv)}, "items": items})

    async def _watch(self, request: web.Request, rtype: ResourceType, namespace) -> web.StreamResponse:
        query = request.query
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"))
        rv_param = query.get("resourceVersion", "")
        initial = query.get("sendInitialEvents") == "true"
        timeout = float(query.get("timeoutSeconds") or 1800)
        start_rv = None
        if rv_param not in ("", "0") and not initial:
            start_rv = int(rv_param) if rv_param.isdigit() else 0
            try:
                self.store.events_after(start_rv)
            except ApiError as exc:
                return await self._stream(request, [{"type": "ERROR", "object": exc.status()}])
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)

        async def send(event: dict) -> None:
            await response.write((json.dumps(event) + "\n").encode())

        if start_rv is None:
            items, start_rv = self.store.list(rtype, namespace, query.get("labelSelector"), query.get("fieldSelector"))
            for item in items:
                await send({"type": "ADDED", "object": item})
            if initial:
                await send({"type": "BOOKMARK", "object": {
                    "kind": rtype.kind, "apiVersion": rtype.api_version,
                    "metadata": {"resourceVersion": str(start_rv), "annotations": {"k8s.io/initial-events-end": "true"}}}})
        deadline = time.monotonic() + timeout
        last = start_rv
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                events = self.store.events_after(last)
            except ApiError as exc:
                await send({"type": "ERROR", "object": exc.status()})
                break
            for event in events:
                last = event["rv"]
                if event["group"] != rtype.group or event["plural"] != rtype.plural:
                    continue
                if namespace and rtype.namespaced and event["namespace"] != namespace:
                    continue
                obj = dict(event["object"], apiVersion=rtype.api_version, kind=rtype.kind)
                if not match_labels(obj["metadata"].get("labels"), labels) or not match_fields(obj, fields):
                    continue
                await send({"type": event["type"], "object": obj})
            await asyncio.sleep(self.watch_poll)
        await response.write_eof()
        return response

    async def _exec(self, request: web.Request, pod: dict) -> web.StreamResponse:
        """``pods/exec`` over a WebSocket (channel.k8s.io v5/v4: stdout 1, stderr 2, status 3)."""
        query = request.query
        argv = query.getall("command", [])
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container") or (containers[0] if containers else None)
        if container not in containers:
            raise ApiError(400, "BadRequest", "container %s is not valid for pod %s" % (container, pod["metadata"]["name"]))
        if (pod.get("status") or {}).get("phase") != "Running" or not any(
                "running" in (s.get("state") or {}) for s in (pod.get("status") or {}).get("containerStatuses") or []):
            raise ApiError(400, "BadRequest", "unable to upgrade connection: container not found (\"%s\")" % container)
        if not argv:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        socket = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"))
        if not socket.can_prepare(request).ok:
            raise ApiError(400, "BadRequest", "Upgrade request required (the lab serves exec over WebSocket only)")
        await socket.prepare(request)
        stdin = None
        if query.get("stdin") in ("true", "1"):
            stdin = await self._exec_stdin(socket)
        else:
            await asyncio.sleep(EXEC_START_SECONDS)
        # A stand-in may run a real program (tests/lab/migrate219.py): off the event loop.
        stdout, stderr, code = await asyncio.get_running_loop().run_in_executor(
            None, self.exec_result, pod, container, argv, stdin)
        if stdout and query.get("stdout") in ("true", "1"):
            await socket.send_bytes(b"\x01" + stdout.encode())
        if stderr and query.get("stderr") in ("true", "1"):
            await socket.send_bytes(b"\x02" + stderr.encode())
        if code == 0:
            status = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                      "message": "command terminated with non-zero exit code: error executing command %s, exit code %d"
                      % (json.dumps(argv), code), "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        await socket.send_bytes(b"\x03" + json.dumps(status).encode())
        await socket.close()
        return socket

    @staticmethod
    async def _exec_stdin(socket) -> bytes:
        """What ``kubectl exec -i`` sends on channel 0 until it closes it (v5: the CLOSE frame 255, 0)."""
        chunks = []
        async for message in socket:
            if message.type != web.WSMsgType.BINARY or not message.data:
                if message.type in (web.WSMsgType.CLOSE, web.WSMsgType.CLOSING, web.WSMsgType.ERROR):
                    break
                continue
            channel, data = message.data[0], message.data[1:]
            if channel == 0:
                chunks.append(bytes(data))
            elif channel == 255 and data[:1] == b"\x00":
                break
        return b"".join(chunks)

    @staticmethod
    async def _stream(request: web.Request, events: list) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for event in events:
            await response.write((json.dumps(event) + "\n").encode())
        await response.write_eof()
        return response

    # ------------------------------------------------------------------ discovery
    def _discovery(self, parts: list):
        if parts == ["version"]:
            minor = self._version.split(".")[1]
            return {"major": "1", "minor": minor + ("+" if self.platform in ("eks", "gke") else ""),
                    "gitVersion": self._git_version(), "gitCommit": hashlib.sha1(self._version.encode()).hexdigest(),
                    "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z", "goVersion": "go1.21.5",
                    "compiler": "gc", "platform": "linux/amd64"}
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return "ok"
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("//", 1)[1]}]}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [self._group(name, versions) for name, versions in self.registry.groups().items() if name]}
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        if len(parts) == 2 and parts[0] == "apis":
            versions = self.registry.groups().get(parts[1])
            if versions is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return dict(self._group(parts[1], versions), kind="APIGroup", apiVersion="v1")
        if len(parts) == 3 and parts[0] == "apis":
            if not self.registry.in_group_version(parts[1], parts[2]):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._resource_list(parts[1], parts[2])
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        if parts[:2] == ["openapi", "v2"]:
            raise ApiError(404, "NotFound", "the lab serves no OpenAPI v2 document")
        return None

    @staticmethod
    def _group(name: str, versions: list) -> dict:
        entries = [{"groupVersion": "%s/%s" % (name, v), "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str) -> dict:
        resources = []
        for rtype in self.registry.in_group_version(group, version):
            entry = {"name": rtype.plural, "singularName": rtype.singular_name(), "namespaced": rtype.namespaced,
                     "kind": rtype.kind, "verbs": list(rtype.verbs)}
            if rtype.short_names:
                entry["shortNames"] = list(rtype.short_names)
            if rtype.categories:
                entry["categories"] = list(rtype.categories)
            resources.append(entry)
            for sub in rtype.subresources:
                if sub == "scale":
                    resources.append({"name": rtype.plural + "/scale", "singularName": "", "namespaced": rtype.namespaced,
                                      "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]})
                elif sub in ("log", "exec"):
                    resources.append({"name": "%s/%s" % (rtype.plural, sub), "singularName": "", "namespaced": True,
                                      "kind": "Pod" if sub == "log" else "PodExecOptions",
                                      "verbs": ["get"] if sub == "log" else ["create", "get"]})
                else:
                    resources.append({"name": "%s/%s" % (rtype.plural, sub), "singularName": "", "namespaced": rtype.namespaced,
                                      "kind": rtype.kind, "verbs": ["get", "patch", "update"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "%s/%s" % (group, version) if group else version,
                "resources": resources}

    def _openapi(self, rest: list) -> dict:
        gvs = [("", "v1")] + [(g, v) for g, versions in self.registry.groups().items() if g for v in versions]
        if not rest:
            paths = {}
            for group, version in gvs:
                key = "apis/%s/%s" % (group, version) if group else "api/%s" % version
                paths[key] = {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (key, self._openapi_hash(group, version))}
            return {"paths": paths}
        if rest[0] == "api" and len(rest) == 2:
            group, version = "", rest[1]
        elif rest[0] == "apis" and len(rest) == 3:
            group, version = rest[1], rest[2]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        types = self.registry.in_group_version(group, version)
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        paths = {}
        for rtype in types:
            gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
            item = ("%s/namespaces/{namespace}/%s/{name}" if rtype.namespaced else "%s/%s/{name}") % (rtype.path_prefix(), rtype.plural)
            params = [{"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                      {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}}]
            operation = {"operationId": "patch%s" % rtype.kind, "x-kubernetes-action": "patch",
                         "x-kubernetes-group-version-kind": gvk, "parameters": params,
                         "responses": {"200": {"description": "OK"}}}
            paths[item] = {"patch": operation,
                           "put": dict(operation, operationId="replace%s" % rtype.kind, **{"x-kubernetes-action": "put"})}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes (lab)", "version": "v" + self._version}, "paths": paths,
                "components": {"schemas": {}}}

    def _openapi_hash(self, group: str, version: str) -> str:
        names = ",".join(t.plural for t in self.registry.in_group_version(group, version))
        return hashlib.sha256(("%s/%s:%s:%s" % (group, version, names, self._version)).encode()).hexdigest()[:32].upper()

    # ------------------------------------------------------------------ tables (kubectl get)
    def _table(self, rtype: ResourceType, items: list, rv: int, request: web.Request) -> dict:
        columns, render = _TABLE_COLUMNS.get(rtype.kind, _DEFAULT_COLUMNS) if not rtype.custom else _DEFAULT_COLUMNS
        include = request.query.get("includeObject", "Metadata")
        rows = []
        for obj in items:
            if include == "Object":
                embedded = obj
            elif include == "None":
                embedded = None
            else:
                embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
            row = {"cells": [obj["metadata"]["name"]] + render(obj) + [_age(obj)]}
            if embedded is not None:
                row["object"] = embedded
            rows.append(row)
        definitions = [{"name": name, "type": "string", "format": "name" if name == "Name" else "", "description": "", "priority": 0}
                       for name in ["Name"] + columns + ["Age"]]
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
                "columnDefinitions": definitions, "rows": rows}


def _age(obj: dict) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    seconds = max(0, int(time.time() - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def _ready(obj: dict) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return "%d/%d" % (status.get("readyReplicas", 0), spec.get("replicas", 1))


def _pod_cells(obj: dict) -> list:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return ["%d/%d" % (sum(1 for s in statuses if s.get("ready")), len((obj.get("spec") or {}).get("containers") or [])),
            (obj.get("status") or {}).get("phase", "Pending"), sum(s.get("restartCount", 0) for s in statuses)]


def _service_cells(obj: dict) -> list:
    spec = obj.get("spec") or {}
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("hostname") or i.get("ip", "") for i in ingress) or ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    ports = ",".join("%s%s/%s" % (p.get("port"), ":%s" % p["nodePort"] if p.get("nodePort") else "", p.get("protocol", "TCP"))
                     for p in spec.get("ports") or []) or "<none>"
    return [spec.get("type", "ClusterIP"), spec.get("clusterIP", "None"), external, ports]


_DEFAULT_COLUMNS = ([], lambda obj: [])
_TABLE_COLUMNS = {
    "Pod": (["Ready", "Status", "Restarts"], _pod_cells),
    "Deployment": (["Ready", "Up-to-date", "Available"],
                   lambda o: [_ready(o), (o.get("status") or {}).get("updatedReplicas", 0), (o.get("status") or {}).get("availableReplicas", 0)]),
    "StatefulSet": (["Ready"], lambda o: [_ready(o)]),
    "ReplicaSet": (["Desired", "Current", "Ready"],
                   lambda o: [(o.get("spec") or {}).get("replicas", 1), (o.get("status") or {}).get("replicas", 0),
                              (o.get("status") or {}).get("readyReplicas", 0)]),
    "Service": (["Type", "Cluster-IP", "External-IP", "Port(s)"], _service_cells),
    "Namespace": (["Status"], lambda o: [(o.get("status") or {}).get("phase", "Active")]),
    "Job": (["Status", "Completions"],
            lambda o: ["Complete" if (o.get("status") or {}).get("succeeded") else "Running",
                       "%d/%d" % ((o.get("status") or {}).get("succeeded", 0), (o.get("spec") or {}).get("completions", 1))]),
    "PersistentVolumeClaim": (["Status", "Volume", "Capacity", "Access Modes", "StorageClass"],
                              lambda o: [(o.get("status") or {}).get("phase", "Pending"), (o.get("spec") or {}).get("volumeName", ""),
                                         ((o.get("status") or {}).get("capacity") or {}).get("storage", ""),
                                         ",".join((o.get("status") or {}).get("accessModes") or []),
                                         (o.get("spec") or {}).get("storageClassName", "")]),
    "ConfigMap": (["Data"], lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {})]),
    "Secret": (["Type", "Data"], lambda o: [o.get("type", "Opaque"), len(o.get("data") or {})]),
    "Node": (["Status", "Version"], lambda o: ["Ready,SchedulingDisabled" if (o.get("spec") or {}).get("unschedulable") else "Ready",
                                               ((o.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")]),
}


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _json(body, status: int = 200) -> web.Response:
    if isinstance(body, str):
        return web.Response(text=body, status=status, content_type="text/plain")
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _reason(code: int) -> str:
    return {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 410: "Expired",
            415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}.get(code, "InternalError")


def write_kubeconfig(path: str, server_url: str, namespace: str = "default") -> str:
    """A kubeconfig (mode 0600) for the lab cluster: plain HTTP, a dummy bearer token, context ``lab``."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "lab", "preferences": {},
              "clusters": [{"name": "lab", "cluster": {"server": server_url}}],
              "users": [{"name": "lab", "user": {"token": "lab-" + base64.b32encode(os.urandom(10)).decode().lower()}}],
              "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": namespace}}]}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml_c.safe_dump(config, handle, default_flow_style=False)
    os.chmod(path, 0o600)
    return path
