"""A real OpenSSH server for the lab's services box: 127.0.0.1, a free port, key authentication only.

``SshBox.start()`` writes, under ``<state_dir>/box``: an sshd_config, an Ed25519 host key, the client key pair
the inventory names, and a ``known_hosts`` line; and under a short directory in the temp dir (``root_dir``,
readable by the box user, removed by ``stop()``): the box's ``bin`` (the stand-in commands, first on PATH),
``tmp`` (Ansible's remote temp dir), ``authorized_keys``. Then it runs Debian's ``/usr/sbin/sshd -D`` (not the
system service) and waits until the port answers with an SSH banner.

Who logs in: sshd runs as root (CI and these machines run as root) and admits only ``BOX_USER``, a dedicated
unprivileged system user (created here with ``useradd`` when missing). The box's commands are stand-ins, and a
command that slipped past them (an absolute ``/usr/bin/apt-get``) would run as that user and be refused by the
host, never change its packages. Run as another user than root, the lab refuses to start a box (sshd could
only let you log in as yourself). ``StrictModes no``: the per-lab files live in the temp dir, whose mode sshd's
strict checks reject. Not modelled: sshd's PAM stack, password or keyboard-interactive login, privilege
separation beyond Debian's defaults.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..core import free_port

BOX_USER = "cci-lab-box"
BOX_HOME = "/var/lib/cci-lab-box"
SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 60.0


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(BOX_USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise RuntimeError("the lab's services box needs user %s: run as root (hacking/setup.sh creates it) " % BOX_USER)
    subprocess.run(["useradd", "--system", "--create-home", "--home-dir", BOX_HOME, "--shell", "/bin/sh",
                    "--comment", "circleci.server lab services box", BOX_USER], check=False, capture_output=True)
    # '*': no password, but not a locked account ('!'), which sshd without PAM refuses even for key login.
    subprocess.run(["usermod", "--password", "*", BOX_USER], check=True, capture_output=True)
    return pwd.getpwnam(BOX_USER)


def _keypair(private_path: str, comment: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    with open(os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with open(private_path + ".pub", "w", encoding="ascii") as handle:
        handle.write("%s %s\n" % (public, comment))
    return public


class SshBox:  # pylint: disable=too-many-instance-attributes
    """sshd for one lab's services box (see the module docstring)."""

    def __init__(self, state_dir: str):
        self.state_dir = os.path.join(state_dir, "box")
        self.root_dir = ""
        self.port = 0
        self.user = BOX_USER
        self.process: subprocess.Popen | None = None
        self.files: dict = {}

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.root_dir, "bin")

    def prepare(self) -> None:
        """Creates the user, keys, directories and config (before the stand-in commands are installed)."""
        if not os.path.exists(SSHD):
            raise RuntimeError("%s is missing: hacking/setup.sh installs Debian's openssh-server" % SSHD)
        account = _ensure_user()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        # Short: ssh's ControlPath socket lives under it and a unix socket path has at most 107 bytes.
        self.root_dir = tempfile.mkdtemp(prefix="cci-box-")
        os.chmod(self.root_dir, 0o755)
        for name in ("bin", "tmp", "cp"):
            os.makedirs(os.path.join(self.root_dir, name), exist_ok=True)
        os.chmod(os.path.join(self.root_dir, "cp"), 0o700)  # the controller's ssh ControlPersist sockets
        host_key = os.path.join(self.state_dir, "ssh_host_ed25519_key")
        host_public = _keypair(host_key, "lab-services-box")
        client_key = os.path.join(self.state_dir, "id_ed25519")
        client_public = _keypair(client_key, "lab-operator")
        authorized = os.path.join(self.root_dir, "authorized_keys")
        with open(authorized, "w", encoding="ascii") as handle:
            handle.write(client_public + "\n")
        os.chown(authorized, account.pw_uid, account.pw_gid)
        os.chmod(authorized, 0o600)
        os.chown(os.path.join(self.root_dir, "tmp"), account.pw_uid, account.pw_gid)
        self.port = free_port()
        known_hosts = os.path.join(self.state_dir, "known_hosts")
        with open(known_hosts, "w", encoding="ascii") as handle:
            handle.write("[127.0.0.1]:%d %s\n" % (self.port, host_public))
        config = os.path.join(self.state_dir, "sshd_config")
        with open(config, "w", encoding="ascii") as handle:
            handle.write("\n".join([
                "# The lab's services box (tests/lab/box/sshd.py): loopback, key authentication only.",
                "ListenAddress 127.0.0.1",
                "Port %d" % self.port,
                "HostKey %s" % host_key,
                "PidFile %s" % os.path.join(self.state_dir, "sshd.pid"),
                "AuthorizedKeysFile %s" % authorized,
                "AllowUsers %s" % BOX_USER,
                "PermitRootLogin no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PrintMotd no",
                "PrintLastLog no",
                # A loaded 2-core machine: let slow handshakes finish, and many ansible connections start at once.
                "LoginGraceTime 180",
                "MaxStartups 64:30:128",
                "MaxSessions 64",
                "ClientAliveInterval 30",
                "SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin" % self.bin_dir,
                "LogLevel ERROR",
                "",
            ]))
        self.files = {"sshd_config": config, "host_key": host_key, "private_key": client_key,
                      "known_hosts": known_hosts, "authorized_keys": authorized, "sshd_log": os.path.join(self.state_dir, "sshd.log")}

    def start(self) -> int:
        """Runs sshd and waits for its banner; returns the port."""
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # Debian's privilege separation directory
        check = subprocess.run([SSHD, "-t", "-f", self.files["sshd_config"]], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError("sshd refuses the lab's config: %s" % check.stderr.strip())
        log = open(self.files["sshd_log"], "ab")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", self.files["sshd_config"]],  # pylint: disable=consider-using-with
                                        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(self.files["sshd_log"], encoding="utf-8", errors="replace") as handle:
                    raise RuntimeError("sshd exited %s: %s" % (self.process.returncode, handle.read()[-2000:]))
            if self._banner():
                return self.port
            time.sleep(0.1)
        raise RuntimeError("sshd did not answer on 127.0.0.1:%d within %ds" % (self.port, START_TIMEOUT))

    def _banner(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                return sock.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.root_dir:
            shutil.rmtree(self.root_dir, ignore_errors=True)
            self.root_dir = ""

    def host_vars(self) -> dict:
        """The inventory variables that reach this box with Ansible's ssh connection."""
        common = " ".join([
            "-o UserKnownHostsFile=%s" % self.files["known_hosts"], "-o StrictHostKeyChecking=yes",
            "-o IdentitiesOnly=yes", "-o ConnectTimeout=60", "-o ServerAliveInterval=15", "-o ServerAliveCountMax=8",
            "-o ConnectionAttempts=3", "-o BatchMode=yes"])
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_connection": "ssh",
            "ansible_ssh_private_key_file": self.files["private_key"],
            "ansible_ssh_common_args": common,
            "ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=120s",
            "ansible_control_path_dir": os.path.join(self.root_dir, "cp"),
            "ansible_timeout": 60,
            "ansible_ssh_retries": 3,
            "ansible_remote_tmp": os.path.join(self.root_dir, "tmp"),
            "ansible_python_interpreter": "/usr/bin/python3",
            # One SSH round trip per task instead of several (sudo here needs no terminal).
            "ansible_pipelining": True,
        }
