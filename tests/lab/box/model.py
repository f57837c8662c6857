"""The state of a CircleCI Server 2.19 services box, served over HTTP to the box's stand-in commands.

The stand-ins on the box (``docker``, the ``replicatedctl`` wrapper, the Replicated installer, ``apt-get``,
``apt-mark``, ``dpkg-query``, ``df``) are thin scripts that call this model; it holds what the real box keeps
in Replicated's daemon, dpkg and the file systems:

- the app (one Replicated app): ``State`` and ``DesiredState`` (``started``/``stopped``), ``IsTransitioning``,
  the installed release ``Sequence``. ``stop``, ``start`` and ``apply`` start a transition that ends
  ``stop_seconds``/``start_seconds``/``apply_seconds`` lab seconds later (evaluated lazily against the lab
  clock, so a poller sees the same thing whenever it looks);
- the release catalogue: every release the vendor published (``catalogue``: sequence, version, required) and
  the ones this box has fetched (``app-release ls --fetch`` fetches them all); ``apply`` installs up to a
  fetched sequence (as Replicated does, with the required ones before it);
- Replicated's version, changed only by the installer (which records every run: tag, arguments, address);
- the ``docker-ce`` package: version, whether ``apt-mark hold`` holds it;
- free space per path for ``df``;
- for the migration to 3.x: the containers ``docker ps`` lists (the app's while it runs, and those ``docker run``
  started), and ``datastores`` (where the real PostgreSQL of the box listens, MongoDB's collection counts).

Mutating requests (POST) go through the lab's request log as service ``box`` and can be faulted like any other
stand-in's. Not modelled: the app's own health (containers, the ``nomad`` container's absence while stopped),
Replicated auto-updating itself during an app update, license and preflight checks, snapshots, console auth,
``app-config``/``params``, the containers vanishing after a Docker upgrade (support article 360053562911),
airgapped installs, disk use growing during the update.
"""
from __future__ import annotations

import datetime
import itertools
import threading

from ..standin_http import HttpStandIn, Request, Response

APP_ID = "edd9471be0bc4ea04dfca94718ddf621"
# server-2.19.md section 3.2 (a few of them): what `docker ps` lists while the app runs.
APP_CONTAINERS = ("frontend", "api-service", "workflows-conductor", "contexts-service", "postgres", "mongo", "redis",
                  "rabbitmq", "vault-cci", "nomad")


def version_tuple(text: str) -> tuple:
    return tuple(int(part) for part in str(text).split(".") if part.isdigit())


class BoxModel(HttpStandIn):  # pylint: disable=too-many-instance-attributes
    """One services box. ``spec`` is the ``box`` section of a box scenario (see tests/lab/box/__init__.py)."""

    SERVICE = "box"

    def __init__(self, clock, request_log=None, faults=None, spec: dict | None = None):
        super().__init__(clock, request_log, faults)
        spec = dict(spec or {})
        self._lock = threading.RLock()
        self._tasks = itertools.count(1)
        self.stop_seconds = float(spec.get("stop_seconds", 120))
        self.start_seconds = float(spec.get("start_seconds", 300))
        self.apply_seconds = float(spec.get("apply_seconds", 240))
        self.replicated_version = str(spec.get("replicated_version", "2.29.0"))
        self.docker = {"package_version": str(spec.get("docker_package_version", "17.12.1~ce-0~ubuntu")),
                       "held": bool(spec.get("docker_held", False))}
        self.catalogue = sorted(({"Sequence": int(r["sequence"]), "Version": str(r["version"]),
                                  "Required": bool(r.get("required", False))} for r in spec.get("releases") or []),
                                key=lambda r: r["Sequence"])
        sequence = int(spec.get("sequence", self.catalogue[0]["Sequence"] if self.catalogue else 1))
        self.fetched = {r["Sequence"] for r in self.catalogue if r["Sequence"] <= sequence}
        state = spec.get("app_state", "started")
        self.app = {"sequence": sequence, "state": state, "desired": state, "until": None, "target": None,
                    "modified": self.clock.now()}
        self.disk_free_kb = {str(k): int(v) for k, v in (spec.get("disk_free_kb") or {}).items()}
        self.default_free_kb = int(spec.get("default_free_kb", 80 * 1024 * 1024))
        self.installer_runs: list[dict] = []
        self.docker_installs: list[dict] = []
        self.app_actions: list[dict] = []
        self.private_address = str(spec.get("private_address", ""))
        # The 2.19 -> 3.x migration (tests/lab/migrate219.py): the app's containers, the temporary ones the export
        # runs (docker run/rm), and where their datastores are (a real PostgreSQL; MongoDB's collection counts).
        self.app_containers = list(spec.get("app_containers") or APP_CONTAINERS)
        self.containers: dict = {}
        self.container_runs: list[dict] = []
        self.datastores: dict = dict(spec.get("datastores") or {})

    # ------------------------------------------------------------------ state
    def _settle(self) -> None:
        app = self.app
        if app["until"] is not None and self.clock.now() >= app["until"]:
            if app["target"] is not None:
                app["sequence"] = app["target"]
                app["target"] = None
            app["state"] = app["desired"]
            app["modified"] = app["until"]
            app["until"] = None

    def _begin(self, desired: str, seconds: float, target=None) -> int:
        now = self.clock.now()
        self.app.update(desired=desired, until=now + seconds, target=target, modified=now,
                        state="stopping" if desired == "stopped" else "starting")
        task = next(self._tasks)
        self.app_actions.append({"action": desired if target is None else "apply", "sequence": target,
                                 "lab_time": round(now, 3), "task": task})
        return task

    def _timestamp(self, lab_time: float) -> str:
        wall = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=(self.clock.now() - lab_time)
                                                                                 / self.clock.factor)
        return wall.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def app_status(self) -> list[dict]:
        with self._lock:
            self._settle()
            app = self.app
            transitioning = app["until"] is not None
            return [{"AppID": APP_ID, "Sequence": app["sequence"], "PatchSequence": 0, "State": app["state"],
                     "DesiredState": app["desired"], "Error": "", "IsCancellable": transitioning,
                     "IsTransitioning": transitioning, "LastModifiedAt": self._timestamp(app["modified"])}]

    def releases(self) -> list[dict]:
        with self._lock:
            self._settle()
            current = self.app["sequence"]
            return [dict(r, Active=r["Sequence"] == current, Pending=r["Sequence"] > current)
                    for r in self.catalogue if r["Sequence"] in self.fetched]

    def snapshot(self) -> dict:
        """Everything, for tests and the lab's verification."""
        with self._lock:
            status = self.app_status()[0]
            version = next((r["Version"] for r in self.catalogue if r["Sequence"] == status["Sequence"]), None)
            return {"replicated_version": self.replicated_version, "docker": dict(self.docker), "app": status,
                    "app_version": version, "installer_runs": list(self.installer_runs),
                    "docker_installs": list(self.docker_installs), "app_actions": list(self.app_actions),
                    "fetched": sorted(self.fetched), "private_address": self.private_address,
                    "containers": self.running_containers(), "container_runs": list(self.container_runs)}

    def running_containers(self) -> list[dict]:
        """What `docker ps` lists: the app's containers while it is not stopped, and the temporary ones."""
        with self._lock:
            self._settle()
            listed = [] if self.app["state"] == "stopped" else [{"name": n, "image": "circleci/" + n} for n in self.app_containers]
            return listed + [dict(c) for c in self.containers.values()]

    # ------------------------------------------------------------------ HTTP
    def read_only(self, request: Request) -> bool:
        """``app-release ls --fetch`` refreshes Replicated's copy of the vendor's list: nothing the app runs changes."""
        return request.path.rstrip("/") == "/v1/app-release/fetch"

    def handle(self, request: Request) -> Response:  # pylint: disable=too-many-return-statements,too-many-branches
        with self._lock:
            path, method = request.path.rstrip("/"), request.method
            body = request.json(default={}) if method == "POST" else {}
            if method == "GET":
                if path == "/v1/state":
                    return Response(200, self.snapshot())
                if path == "/v1/app/status":
                    return Response(200, self.app_status())
                if path == "/v1/app-release":
                    return Response(200, self.releases())
                if path == "/v1/replicated/version":
                    return Response(200, {"version": self.replicated_version})
                if path == "/v1/docker":
                    return Response(200, dict(self.docker))
                if path == "/v1/disk":
                    return Response(200, {p: self.disk_free_kb.get(p, self.default_free_kb)
                                          for p in request.query.get("paths", "/").split(",")})
                if path == "/docker":
                    return self._installer_script(request)
                if path == "/v1/containers":
                    return Response(200, self.running_containers())
                if path == "/v1/datastores":
                    return Response(200, self.datastores)
            if method == "POST":
                return self._post(path, body)
            return Response(404, {"error": "lab box: no route %s %s" % (method, path)})

    def _post(self, path, body) -> Response:  # pylint: disable=too-many-return-statements
        self._settle()
        if path == "/v1/app/stop":
            if self.app["desired"] == "stopped" and self.app["until"] is None:
                return Response(200, {"task": None, "message": "app is already stopped"})
            return Response(200, {"task": self._begin("stopped", self.stop_seconds)})
        if path == "/v1/app/start":
            if self.app["desired"] == "started" and self.app["until"] is None:
                return Response(200, {"task": None, "message": "app is already started"})
            return Response(200, {"task": self._begin("started", self.start_seconds)})
        if path == "/v1/containers/run":
            name, image = str(body.get("name", "")), str(body.get("image", ""))
            if name in self.containers or any(c["name"] == name for c in self.running_containers()):
                return Response(409, {"error": 'Conflict. The container name "/%s" is already in use.' % name})
            self.containers[name] = {"name": name, "image": image}
            self.container_runs.append({"name": name, "image": image, "lab_time": round(self.clock.now(), 3)})
            return Response(200, {"id": "%064x" % len(self.container_runs)})
        if path == "/v1/containers/rm":
            name = str(body.get("name", ""))
            if self.containers.pop(name, None) is None:
                return Response(404, {"error": "No such container: %s" % name})
            return Response(200, {"removed": name})
        if path == "/v1/app-release/fetch":
            self.fetched.update(r["Sequence"] for r in self.catalogue)
            return Response(200, self.releases())
        if path == "/v1/app-release/apply":
            return self._apply(body)
        if path == "/v1/docker/install":
            version = str(body.get("package_version", ""))
            if self.docker["held"] and version != self.docker["package_version"] and not body.get("allow_held"):
                return Response(409, {"error": "E: Held packages were changed and -y was used without "
                                               "--allow-change-held-packages."})
            self.docker_installs.append({"from": self.docker["package_version"], "to": version})
            self.docker["package_version"] = version
            return Response(200, dict(self.docker))
        if path in ("/v1/docker/hold", "/v1/docker/unhold"):
            self.docker["held"] = path.endswith("/hold")
            return Response(200, dict(self.docker))
        if path == "/v1/installer/run":
            tag = str(body.get("tag", ""))
            self.installer_runs.append({"tag": tag, "args": list(body.get("args") or []),
                                        "from": self.replicated_version, "lab_time": round(self.clock.now(), 3)})
            self.replicated_version = tag
            if body.get("private_address"):
                self.private_address = str(body["private_address"])
            return Response(200, {"version": tag})
        return Response(404, {"error": "lab box: no route POST %s" % path})

    def _apply(self, body) -> Response:
        try:
            sequence = int(body.get("sequence") or 0)
        except (TypeError, ValueError):
            return Response(400, {"error": "invalid sequence %r" % body.get("sequence")})
        fetched = [r["Sequence"] for r in self.catalogue if r["Sequence"] in self.fetched]
        if sequence == 0 and fetched:
            sequence = max(fetched)
        if sequence not in fetched:
            return Response(404, {"error": "no release with sequence %d: fetch releases first (app-release ls --fetch)"
                                           % sequence})
        if sequence <= self.app["sequence"]:
            return Response(200, {"task": None, "message": "no pending release up to sequence %d" % sequence})
        desired = self.app["desired"]
        return Response(200, {"task": self._begin(desired, self.apply_seconds, target=sequence)})

    def _installer_script(self, request) -> Response:
        from .bin import installer_script  # pylint: disable=import-outside-toplevel
        tag = request.query.get("replicated_tag", "")
        if not tag:
            return Response(400, "lab box: the installer needs ?replicated_tag=", text=True)
        return Response(200, installer_script(self.base_url, tag), text=True)
