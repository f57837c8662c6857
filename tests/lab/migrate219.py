"""The lab of the 2.19 -> 3.x migration (scenarios ``migrate-2.19*``, ``kind: migrate-2.19``).

``bring_up_migrate219(lab, scenario)`` starts, on 127.0.0.1:

- the 3.x cluster as KOTS left it (``seed_kots.bring_up_kots``: the aws-3.4 world without its AWS part), plus what
  the migration works on and the KOTS stand-in chart leaves out: the ``mongodb`` and ``vault`` StatefulSets, the
  datastore passwords in the pods' environment (``POSTGRES_PASSWORD``, ``MONGODB_ROOT_PASSWORD``, from the chart's
  Secrets, as the Bitnami images take them), and the application Deployments at the scenario's replica counts;
- two real PostgreSQL clusters (``tests/lab/pg.py``): the box's (trust on 127.0.0.1, as in its container),
  seeded with ``box.postgresql.databases``, and the 3.x pod's (the ``postgresql`` Secret's password), seeded with
  ``cluster.postgresql.databases`` (what 3.x created itself);
- ``kubectl exec`` in ``postgresql-*`` runs the command for real (``sh``/``psql``/``pg_dumpall``, as the lab's
  unprivileged user, with the pod's environment and PGHOST/PGPORT of the pod's cluster, stdin passed through);
  in ``mongodb-*`` and ``vault-*`` it reaches the stand-ins below; in ``circleci-migrate219-*`` (the migration's
  own restore pods) it runs ``sh`` for real in the directory of the claim the pod mounts (the Vault StatefulSet's
  claim ``data-vault-0``, a directory ``lab-volumes-*/data-vault-0`` in the temp dir, seeded with 3.x's own Vault files), refused while
  another pod mounts the claim (ReadWriteOnce);
- the services box of ``tests/lab/box`` (real sshd, stand-in commands) without its AWS and Nomad world, whose
  ``docker exec`` of ``pg_dumpall``/``psql`` runs the real programs against the box's cluster, and whose data
  directory (``<box root>/data/circle``) holds the Vault file backend and the signing/encryption keys
  (``box.vault_files``, ``box.keys``: the scenario's canary values).

Every exec into a datastore pod is appended to ``<state dir>/migrate219.jsonl`` (pod, program, bytes of stdin,
whether it restored (a pg_dumpall dump, a mongorestore, a Vault tar), exit code; never the command line, which could hold what a test looks for).

Not modelled: MongoDB itself (the stand-in keeps collection counts; an archive is gzip'd JSON of them, not BSON;
``mongorestore --drop`` replaces the archive's databases), Vault itself (unsealing succeeds when ``vault-init-out`` is
on its claim; the keys are not checked; no token, no storage engine: ``find`` lists the claim's files), the pods' file
systems other than the Vault claim, file ownership (the restore runs as the lab's user, not the pod's runAsUser), a
restore pod that cannot start because the claim is attached elsewhere (refused at its exec here), the 2.19
app's own containers beyond their names, and what tests/lab/pg.py and tests/lab/box say they do not model.
"""
from __future__ import annotations

import base64
import copy
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading


from . import yaml_c
from .pg import ThrowawayCluster, demote, owner_account

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO_ROOT, ".venv", "bin")
MONGO_AUTH = re.compile(r"(-u|--username)[ =]root\b.*(-p|--password)[ =]\"?\$\{?MONGODB_ROOT_PASSWORD\}?\"?")


class Journal:
    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        open(path, "w", encoding="utf-8").close()

    def write(self, **event) -> None:
        with self.lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, sort_keys=True) + "\n")


class PodPostgres:
    """``kubectl exec`` in the 3.x ``postgresql-*`` pods: the command, run for real against the pod's cluster."""

    takes_stdin = True

    def __init__(self, kube, cluster: ThrowawayCluster, journal: Journal):
        self.kube, self.cluster, self.journal = kube, cluster, journal

    def __call__(self, pod, container, argv, stdin=None):
        program = os.path.basename(argv[0]) if argv else ""
        if program not in ("sh", "bash", "psql", "pg_dumpall", "pg_isready"):
            return "", "lab: %s: not in the PostgreSQL pod stand-in\n" % program, 127
        env = self.kube._container_env(pod, container)  # pylint: disable=protected-access
        env.update(self.cluster.client_env())
        env.update(PATH="%s:/usr/bin:/bin" % self.cluster.bin, LANG="C.UTF-8", HOME="/tmp")
        argv = list(argv)
        if program in ("sh", "bash"):
            argv[0] = "/bin/sh"
        else:
            argv[0] = os.path.join(self.cluster.bin, program)
        proc = subprocess.run(argv, input=stdin or b"", capture_output=True, env=env, check=False, timeout=600,
                              preexec_fn=demote(owner_account()), cwd="/tmp")  # pylint: disable=subprocess-popen-preexec-fn
        self.journal.write(pod=pod["metadata"]["name"], program=program, stdin_bytes=len(stdin or b""),
                           restore=b"PostgreSQL database cluster dump" in (stdin or b""), code=proc.returncode)
        return proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"), proc.returncode


class PodMongo:
    """``kubectl exec`` in the 3.x ``mongodb-*`` pods: collection counts, mongorestore of a lab archive."""

    takes_stdin = True

    def __init__(self, databases: dict, journal: Journal):
        self.databases = copy.deepcopy(databases or {})
        self.journal = journal
        self.lock = threading.Lock()

    def __call__(self, pod, container, argv, stdin=None):
        del container
        line = " ".join(argv)
        name = pod["metadata"]["name"]
        if not re.search(r"\b(mongorestore|mongo)\b", line):
            return "", "lab: %s: not in the MongoDB pod stand-in\n" % (argv[0] if argv else ""), 127
        if not MONGO_AUTH.search(line):
            return "", ("MongoServerError: command requires authentication (lab: pass -u root -p "
                        "\"$MONGODB_ROOT_PASSWORD\", the pod's variable)\n"), 1
        with self.lock:
            if "mongorestore" in line:
                try:
                    data = stdin or b""
                    archive = json.loads(gzip.decompress(data) if "--gzip" in line else data)
                    if archive.get("format") != "lab-mongodump-archive":
                        raise ValueError("not a lab mongodump archive")
                except (OSError, ValueError, EOFError) as exc:
                    self.journal.write(pod=name, program="mongorestore", stdin_bytes=len(stdin or b""), restore=False, code=1)
                    return "", "Failed: stream or file does not appear to be a mongodump archive (%s)\n" % exc, 1
                for database, collections in archive["databases"].items():
                    if database in ("admin", "local", "config"):
                        continue
                    if "--drop" in line or database not in self.databases:
                        self.databases[database] = {}
                    for collection, count in collections.items():
                        self.databases[database][collection] = int(count)
                self.journal.write(pod=name, program="mongorestore", stdin_bytes=len(stdin), restore=True, code=0)
                return "", "finished restoring %d databases\n" % len(archive["databases"]), 0
            if "getCollectionNames" in line:
                return json.dumps(self.databases, sort_keys=True) + "\n", "", 0
            if "db.stats()" in line or "ping" in line:
                return json.dumps({"ok": 1}) + "\n", "", 0
        return "", "lab: this --eval is not scripted in the MongoDB pod stand-in\n", 1


VAULT_MOUNT = "/vault/file"
# What 3.x's own Vault holds on its claim before the migration (the chart initialised it): kept aside by the restore.
VAULT_FRESH_FILES = {"core/_keyring": "3.x's own keyring", "core/master": "3.x's own master key",
                     "sys/token/id/3x-root": "3.x's own root token"}


class VaultVolumes:
    """The Vault claims' file systems: one directory of the lab per PersistentVolumeClaim (``<state>/volumes/<claim>``),
    what a pod that mounts the claim sees at its mountPath."""

    def __init__(self, kube, base_dir: str, account):
        self.kube, self.base_dir, self.account = kube, base_dir, account

    def path(self, claim: str) -> str:
        return os.path.join(self.base_dir, claim)

    def create(self, claim: str, files: dict) -> None:
        for relative, text in files.items():
            _write(os.path.join(self.path(claim), relative), text, self.account)
        for directory, _dirs, _files in os.walk(self.base_dir):
            os.chown(directory, self.account.pw_uid, self.account.pw_gid)

    def files(self, claim: str) -> list:
        """The claim's files, relative (what ``find . -type f`` prints in its root, without ``./``)."""
        root = self.path(claim)
        return sorted(os.path.relpath(os.path.join(d, n), root) for d, _dirs, names in os.walk(root) for n in names)

    def mounts(self, pod: dict) -> dict:
        """mountPath -> claim of the pod's first container."""
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"].get("volumes") or []
                  if v.get("persistentVolumeClaim")}
        container = pod["spec"]["containers"][0]
        return {m["mountPath"]: claims[m["name"]] for m in container.get("volumeMounts") or [] if m["name"] in claims}

    def users(self, namespace: str, claim: str) -> list:
        """The pods that mount ``claim``."""
        return [p["metadata"]["name"] for p in self.kube.list("v1", "Pod", namespace)
                if claim in self.mounts(p).values()]


class PodVault:
    """``kubectl exec`` in the 3.x ``vault-*`` pods: unseal, status and a listing of the file backend on its claim
    (``VaultVolumes``). Vault restarts sealed: a new vault-0 (another uid) is sealed until unsealed again."""

    takes_stdin = False

    def __init__(self, volumes: VaultVolumes, journal: Journal):
        self.volumes, self.journal = volumes, journal
        self.sealed = True
        self.pod_uid = None

    def __call__(self, pod, container, argv, stdin=None):
        del container, stdin
        line = " ".join(argv)
        name = pod["metadata"]["name"]
        if pod["metadata"].get("uid") != self.pod_uid:
            self.pod_uid, self.sealed = pod["metadata"].get("uid"), True
        claim = self.volumes.mounts(pod).get(VAULT_MOUNT)
        files = self.volumes.files(claim) if claim else []
        if "vault operator unseal" in line:
            if "vault-init-out" not in files:
                return "", "cat: can't open '%s/vault-init-out': No such file or directory\n" % VAULT_MOUNT, 1
            self.sealed = False
            self.journal.write(pod=name, program="vault-unseal", stdin_bytes=0, restore=False, code=0)
            return "Sealed false\n", "", 0
        # A ";" list of these, as "sh -c" runs it: vault status, echo <word>, find <mount> -type f.
        script = argv[2] if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"]) and len(argv) > 2 else line
        out, code = "", 0
        for command in [c.strip() for c in script.split(";") if c.strip()]:
            if re.match(r"^vault status\b", command):
                out += json.dumps({"sealed": self.sealed, "initialized": bool(files)}) + "\n"
                code = 2 if self.sealed else 0
            elif re.match(r"^echo \S+$", command):
                out, code = out + command.split()[1] + "\n", 0
            elif re.match(r"^find %s -type f$" % re.escape(VAULT_MOUNT), command):
                out, code = out + "".join("%s/%s\n" % (VAULT_MOUNT, f) for f in files), 0
            else:
                return out, "lab: %r is not scripted in the Vault pod stand-in\n" % command, 127
        return out, "", code


class PodVolumeRestore:
    """``kubectl exec`` in the migration's restore pods (``circleci-migrate219-*``): ``sh`` for real, as the lab's
    unprivileged user, in the claim's directory: the pod's mountPath in the arguments is that directory. Refused, as a
    ReadWriteOnce volume would be, while another pod (vault-0) mounts the claim."""

    takes_stdin = True

    def __init__(self, volumes: VaultVolumes, journal: Journal):
        self.volumes, self.journal = volumes, journal

    def __call__(self, pod, container, argv, stdin=None):
        del container
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        program = os.path.basename(argv[0]) if argv else ""
        if program not in ("sh", "bash"):
            return "", "lab: %s: the restore pod stand-in runs sh only\n" % program, 127
        mounts = self.volumes.mounts(pod)
        for claim in mounts.values():
            others = [p for p in self.volumes.users(namespace, claim) if p != name]
            if others:
                return "", ("lab: Multi-Attach error for volume %s: Volume is already used by pod(s) %s (ReadWriteOnce)\n"
                            % (claim, ", ".join(others))), 1
        real = []
        for arg in argv:
            for mount_path, claim in mounts.items():
                if arg == mount_path or arg.startswith(mount_path + "/"):
                    arg = self.volumes.path(claim) + arg[len(mount_path):]
            real.append(arg)
        real[0] = "/bin/sh"
        proc = subprocess.run(real, input=stdin or b"", capture_output=True, check=False, timeout=600, cwd="/tmp",
                              env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"},
                              preexec_fn=demote(self.volumes.account))  # pylint: disable=subprocess-popen-preexec-fn
        restore = stdin is not None and len(stdin) > 0 and "tar" in " ".join(argv)
        self.journal.write(pod=name, program="sh", stdin_bytes=len(stdin or b""), restore=restore, code=proc.returncode)
        return proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"), proc.returncode


def _secret_value(lab, namespace, name, key) -> str:
    secret = lab.kube.get("v1", "Secret", namespace, name)
    return base64.b64decode(secret["data"][key]).decode()


def _with_env(workload: dict, container_env: list) -> dict:
    new = copy.deepcopy(workload)
    container = new["spec"]["template"]["spec"]["containers"][0]
    container["env"] = list(container.get("env") or []) + container_env
    new.pop("status", None)
    return new


def _secret_env(variable, secret, key) -> dict:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _statefulset(namespace, name, image, env) -> dict:
    labels = {"app": name, "layer": "data", "app.kubernetes.io/name": name, "app.kubernetes.io/instance": "circleci-server"}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels, **{"kots.io/app-slug": "circleci-server"})},
            "spec": {"serviceName": name, "replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": image, "env": env}]}}}}


def _box_files(root: str, scenario: dict, account) -> str:
    """The box's /data/circle under the box root: the Vault file backend and the keys, owned by the box user."""
    box = scenario["box"]
    data = os.path.join(root, "data", "circle")
    for relative, text in list((box.get("vault_files") or {}).items()):
        _write(os.path.join(data, "contexts-vault", relative), text, account)
    for name, text in (box.get("keys") or {}).items():
        _write(os.path.join(data, "circleci-encryption-keys", name), text, account)
    for directory, _dirs, _files in os.walk(os.path.join(root, "data")):
        os.chown(directory, account.pw_uid, account.pw_gid)
        os.chmod(directory, 0o700)
    work = os.path.join(root, "work")
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.chown(work, account.pw_uid, account.pw_gid)
    os.chmod(os.path.join(root, "data"), 0o755)
    return data


def _write(path, text, account) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(str(text))
    os.chown(path, account.pw_uid, account.pw_gid)


def bring_up_migrate219(lab, scenario: dict) -> None:
    """Seed ``scenario`` (kind migrate-2.19) into ``lab``; called by ``seed.bring_up``."""
    from . import seed  # pylint: disable=import-outside-toplevel
    from .box import start_box  # pylint: disable=import-outside-toplevel
    from .seed_kots import bring_up_kots  # pylint: disable=import-outside-toplevel

    bring_up_kots(lab, scenario)
    namespace = scenario["kubernetes"]["namespace"]
    cluster_spec = scenario.get("cluster") or {}
    journal = Journal(os.path.join(lab.state_dir, "migrate219.jsonl"))
    lab.files["migrate219_journal"] = journal.path
    account = owner_account()
    with seed._phase("postgresql"):  # pylint: disable=protected-access
        box_pg = ThrowawayCluster(tempfile.gettempdir(), "box")
        lab.register_stopper(box_pg.stop)
        box_pg.start()
        box_pg.seed((scenario["box"].get("postgresql") or {}).get("databases") or {})
        pod_pg = ThrowawayCluster(tempfile.gettempdir(), "pod",
                                  password=_secret_value(lab, namespace, "postgresql", "postgresql-password"))
        lab.register_stopper(pod_pg.stop)
        pod_pg.start()
        pod_pg.seed((cluster_spec.get("postgresql") or {}).get("databases") or {})
    lab.pg = {"box": box_pg, "pod": pod_pg}
    with seed._phase("3.x datastores"):  # pylint: disable=protected-access
        postgresql = lab.kube.get("apps/v1", "StatefulSet", namespace, "postgresql")
        lab.kube.replace(_with_env(postgresql, [_secret_env("POSTGRES_PASSWORD", "postgresql", "postgresql-password")]))
        lab.kube.create(_statefulset(namespace, "mongodb", "cciserver.azurecr.io/mongodb:3.6.22",
                                     [_secret_env("MONGODB_ROOT_PASSWORD", "mongodb", "mongodb-root-password")]))
        vault = _statefulset(namespace, "vault", "cciserver.azurecr.io/vault:1.4.3", [])
        vault["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": VAULT_MOUNT}]
        vault["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 100, "fsGroup": 1000}
        vault["spec"]["volumeClaimTemplates"] = [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}]
        # The cluster's storage, like the PostgreSQL clusters' data: outside the state directory (the controller's).
        vault_volumes = VaultVolumes(lab.kube, tempfile.mkdtemp(prefix="lab-volumes-"), account)
        lab.register_stopper(lambda: shutil.rmtree(vault_volumes.base_dir, ignore_errors=True))
        vault_volumes.create("data-vault-0", VAULT_FRESH_FILES)
        lab.files["migrate219_volumes"] = vault_volumes.base_dir
        lab.kube.create(vault)
        for name, replicas in (cluster_spec.get("replicas") or {}).items():
            deployment = lab.kube.get("apps/v1", "Deployment", namespace, name)
            deployment = copy.deepcopy(deployment)
            deployment["spec"]["replicas"] = int(replicas)
            deployment.pop("status", None)
            lab.kube.replace(deployment)
        lab.kube.set_exec(namespace, "postgresql-", "", stdout=PodPostgres(lab.kube, pod_pg, journal))
        lab.mongo = PodMongo((cluster_spec.get("mongodb") or {}).get("databases") or {}, journal)
        lab.kube.set_exec(namespace, "mongodb-", "", stdout=lab.mongo)
        lab.vault = PodVault(vault_volumes, journal)
        lab.kube.set_exec(namespace, "vault-", "", stdout=lab.vault)
        lab.kube.set_exec(namespace, "circleci-migrate219-", "", stdout=PodVolumeRestore(vault_volumes, journal))
    with seed._phase("box"):  # pylint: disable=protected-access
        box_spec = dict(scenario["box"], datastores={
            "postgresql": {"bin": box_pg.bin, "host": "127.0.0.1", "port": box_pg.port},
            "mongodb": {"databases": (scenario["box"].get("mongodb") or {}).get("databases") or {}}})
        ssh = start_box(lab, box_spec)
        data_dir = _box_files(ssh.root_dir, scenario, account)
    lab.files["migrate219_pg"] = os.path.join(lab.state_dir, "postgres.json")
    with open(lab.files["migrate219_pg"], "w", encoding="utf-8") as handle:
        json.dump({side: {"bin": c.bin, "port": c.port, "base_dir": c.base_dir} for side, c in lab.pg.items()}, handle)
    _write_inventory(lab, scenario, ssh, data_dir)
    lab.request_log.clear()


def _write_inventory(lab, scenario, ssh, data_dir) -> None:
    """The inventory: the services box over SSH, the controller (localhost) for the cluster; no secret in it."""
    variables = {
        "circleci_lab": True,
        "circleci_lab_admin_url": lab.endpoints["admin"],
        "circleci_lab_box_url": lab.endpoints["box"],
        "circleci_namespace": scenario["kubernetes"]["namespace"],
        "circleci_kubeconfig": lab.files["kubeconfig"],
        "circleci_219_data_dir": data_dir,
        "circleci_migrate219_box_work_dir": os.path.join(ssh.root_dir, "work"),
        "circleci_poll_delay": 1,
    }
    inventory = {"all": {
        "vars": variables,
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(VENV_BIN, "python")}},
        "children": {"circleci_services_box": {"hosts": {"services-box": ssh.host_vars()}}}}}
    path = os.path.join(lab.state_dir, "inventory.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# Written by `python -m tests.lab up %s`: the 2.19 services box over SSH, the 3.x cluster.\n"
                     % lab.scenario_name)
        yaml_c.safe_dump(inventory, handle, default_flow_style=False, sort_keys=True)
    lab.files["inventory"] = path
    vars_path = os.path.join(lab.state_dir, "vars.yml")
    with open(vars_path, "w", encoding="utf-8") as handle:
        yaml_c.safe_dump(variables, handle, sort_keys=True)
    lab.files["vars"] = vars_path
