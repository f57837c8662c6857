"""Real PostgreSQL for the lab: throwaway clusters of Debian's postgresql on 127.0.0.1 (never the system service).

``ThrowawayCluster(parent_dir, name, password=None)``: ``start()`` runs ``initdb`` into ``<parent_dir>/<name>``
(in a directory it creates, owned by the lab's unprivileged box user: PostgreSQL refuses to run as root), then
``pg_ctl start`` (a copy of a template initdb'd once under ``.cache/lab-postgres``) on a free port with TCP on
127.0.0.1 only and no Unix socket; ``stop()`` shuts it down at once (SIGQUIT) and removes the directory. With
``password`` the superuser ``postgres`` needs it (scram-sha-256), otherwise 127.0.0.1 is trusted (the 2.19 box's
container trusted its local connections).

``client_env()`` is what a client needs (PGHOST, PGPORT, PGUSER; never PGPASSWORD: the caller adds it, so a
test shows where the password comes from); ``run_as_owner(argv, ...)`` runs a program of the cluster's version
as the owner. ``seed(databases)`` fills it: ``{db: {table: rows}}``, rows generated from the db, table and row
number (so two seeds of the same spec are equal). ``table_checksums(cluster_or_env)`` gives ``{db: {schema.table:
[count, md5]}}`` for every user table: the count and an md5 over the rows' text sorted, by the same script the
playbook runs (``roles/migrate219_preflight/files/pg_table_checksums.sh``).

Not modelled: the 2.19 (9.5) and 3.x (12) server versions (both sides run the installed major, 15 here),
pg_hba rules beyond "trust" or "password on 127.0.0.1", replication, the images' extensions.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from .core import free_port

OWNER = "cci-lab-box"  # the lab's unprivileged user (tests/lab/box/sshd.py creates it)
START_TIMEOUT = 60.0


def bin_dir() -> str:
    """The bin directory of the newest installed PostgreSQL major (hacking/setup.sh installs postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run hacking/setup.sh, "
                           "which installs Debian's postgresql")
    return os.path.dirname(found[-1])


def owner_account() -> pwd.struct_passwd:
    from .box.sshd import _ensure_user  # pylint: disable=import-outside-toplevel
    return _ensure_user()


def demote(account: pwd.struct_passwd):
    """A preexec_fn that drops to ``account`` (the lab runs as root; PostgreSQL must not)."""
    def _drop():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
    return _drop


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class ThrowawayCluster:
    """One PostgreSQL cluster of the lab (see the module docstring)."""

    def __init__(self, parent_dir: str, name: str, password: str | None = None):
        self.name = name
        self.parent_dir = parent_dir
        self.password = password
        self.data_dir = self.base_dir = ""
        self.port = 0
        self.bin = bin_dir()
        self.account = None

    def run_as_owner(self, argv, input_bytes=None, env=None, check=True):
        full_env = {"PATH": "%s:/usr/bin:/bin" % self.bin, "LANG": "C.UTF-8", "HOME": self.base_dir or "/tmp"}
        full_env.update(env or {})
        proc = subprocess.run(argv, input=input_bytes, capture_output=True, env=full_env, check=False,
                              preexec_fn=demote(self.account), cwd="/")  # pylint: disable=subprocess-popen-preexec-fn
        if check and proc.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (argv[0], proc.returncode, proc.stderr.decode(errors="replace")[-2000:]))
        return proc

    def start(self) -> "ThrowawayCluster":
        self.account = owner_account()
        os.makedirs(self.parent_dir, exist_ok=True)
        self.base_dir = tempfile.mkdtemp(prefix="pg-%s-" % self.name, dir=self.parent_dir)
        os.chown(self.base_dir, self.account.pw_uid, self.account.pw_gid)
        os.chmod(self.base_dir, 0o700)
        self.data_dir = os.path.join(self.base_dir, "data")
        # initdb takes seconds on a loaded machine: once per PostgreSQL version into .cache/, then a copy.
        self.run_as_owner(["cp", "-a", self._template(), self.data_dir])
        self.port = free_port()
        options = "-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories='' -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=40 -c shared_buffers=16MB" % self.port
        self.run_as_owner([os.path.join(self.bin, "pg_ctl"), "-D", self.data_dir, "-o", options, "-l",
                           os.path.join(self.base_dir, "server.log"), "-w", "-t", str(int(START_TIMEOUT)), "start"])
        deadline = time.monotonic() + START_TIMEOUT
        while self.psql("SELECT 1", check=False, password=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL %s did not accept connections on 127.0.0.1:%d" % (self.name, self.port))
            time.sleep(0.1)
        if self.password:
            # The password through stdin (never on a command line), then 127.0.0.1 asks for it.
            self.psql("", password=False, input_bytes=("ALTER ROLE postgres PASSWORD '%s';"
                                                       % self.password.replace("'", "''")).encode())
            hba = os.path.join(self.data_dir, "pg_hba.conf")
            with open(hba, "w", encoding="utf-8") as handle:
                handle.write("# tests/lab/pg.py: the 3.x pod's PostgreSQL asks for the password\n"
                             "host all all 127.0.0.1/32 scram-sha-256\n")
            self.psql("SELECT pg_reload_conf()", password=False)
            time.sleep(0.2)
        return self

    def _template(self) -> str:
        """An initdb'd data directory (trust on 127.0.0.1) of this PostgreSQL version, made once under .cache/."""
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        version = os.path.basename(os.path.dirname(self.bin))
        cache = os.path.join(repo, ".cache", "lab-postgres")
        template = os.path.join(cache, "template-%s" % version)
        if os.path.isfile(os.path.join(template, "PG_VERSION")):
            return template
        os.makedirs(cache, exist_ok=True)
        os.chmod(cache, 0o755)
        scratch = tempfile.mkdtemp(prefix="initdb-", dir=cache)
        os.chown(scratch, self.account.pw_uid, self.account.pw_gid)
        self.run_as_owner([os.path.join(self.bin, "initdb"), "-D", os.path.join(scratch, "data"), "-U", "postgres",
                           "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--auth=trust"])
        try:
            os.rename(os.path.join(scratch, "data"), template)
        except OSError:  # another lab made it meanwhile
            pass
        shutil.rmtree(scratch, ignore_errors=True)
        return template

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT to the postmaster, SIGKILL after 5 s), then the directory is removed: fast
        on a loaded machine, where the lab's `down` gives the whole lab 15 s before it kills it."""
        pid = 0
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid"), encoding="ascii") as handle:
                pid = int(handle.readline().strip() or 0)
        except (OSError, ValueError):
            pass
        if pid > 0:
            for sig, wait in ((signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.05)
                if not _alive(pid):
                    break
        if self.base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        self.data_dir = self.base_dir = ""

    def client_env(self) -> dict:
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}

    def psql(self, sql: str, database: str = "postgres", check: bool = True, input_bytes=None, password=True):
        env = self.client_env()
        if self.password and password:
            env["PGPASSWORD"] = self.password
        argv = [os.path.join(self.bin, "psql"), "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", database]
        if sql:
            argv += ["-c", sql]
        return self.run_as_owner(argv, input_bytes=input_bytes, env=env, check=check)

    def seed(self, databases: dict) -> None:
        """``{db: {table: rows}}``: creates each database and table (id, name, payload jsonb, created) and its rows."""
        for database, tables in databases.items():
            if database != "postgres":
                self.psql('CREATE DATABASE "%s"' % database)
            statements = []
            for table, rows in tables.items():
                statements.append('CREATE TABLE "%s" (id bigint PRIMARY KEY, name text NOT NULL, payload jsonb, '
                                  'created timestamptz NOT NULL);' % table)
                if int(rows):
                    statements.append(
                        "INSERT INTO \"%s\" SELECT g, '%s-' || g || '-' || md5('%s/%s/' || g), "
                        "jsonb_build_object('n', g, 'db', '%s', 'tags', jsonb_build_array('a' || (g %% 7), 'b' || (g %% 11))), "
                        "timestamptz '2020-01-01 00:00:00+00' + g * interval '37 minutes' FROM generate_series(1, %d) g;"
                        % (table, table, database, table, database, int(rows)))
            self.psql("", database=database, input_bytes="\n".join(statements).encode())


def migrate219_utils():
    """The collection's plugins/module_utils/migrate219.py, loaded by path (plain Python, no Ansible)."""
    import importlib.util  # pylint: disable=import-outside-toplevel
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "plugins", "module_utils", "migrate219.py")
    spec = importlib.util.spec_from_file_location("circleci_server_migrate219", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKSUM_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                               "roles", "migrate219_preflight", "files", "pg_table_checksums.sh")


def table_checksums(cluster: ThrowawayCluster) -> dict:
    """``{db: {schema.table: [rows, md5]}}`` of every user table of every database but postgres: the playbook's own
    script (roles/migrate219_preflight/files/pg_table_checksums.sh), run here with the cluster's address."""
    with open(CHECKSUM_SCRIPT, "rb") as handle:
        script = handle.read()
    env = dict(cluster.client_env(), POSTGRES_PASSWORD=cluster.password or "")
    out = cluster.run_as_owner(["/bin/sh", "-s"], input_bytes=script, env=env).stdout.decode()
    return migrate219_utils().parse_table_checksums(out)
