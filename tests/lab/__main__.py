"""The lab's command line: bring a scenario up in the background, look at it, take it down.

    python -m tests.lab up aws-4.2 [--state-dir DIR] [--factor 100]
    python -m tests.lab status [--state-dir DIR]
    python -m tests.lab reset [--state-dir DIR]      # down, then up with the same scenario
    python -m tests.lab down [--state-dir DIR]
    python -m tests.lab scenarios

`up` starts `python -m tests.lab serve ...` as a detached process, waits until it has written
DIR/lab.json, and prints where everything is; `down` stops it by PID and checks that none of its
ports is still open. The default DIR is .cache/lab in the checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

from .server import STATE_FILE, Lab, read_state

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_STATE_DIR = os.path.join(REPO_ROOT, ".cache", "lab")
UP_TIMEOUT = 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_lab(pid: int) -> bool:
    """Whether ``pid`` is still a lab process: a stale lab.json may name a pid the system gave to another."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return b"tests.lab\0serve" in handle.read()
    except OSError:
        return _alive(pid)


def _port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((parsed.hostname, parsed.port)) == 0


def cmd_serve(args) -> int:
    lab = Lab(args.state_dir, args.scenario, args.factor)
    stopping = threading.Event()

    def _on_signal(signum, frame):  # pylint: disable=unused-argument
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        lab.start()
        print("lab: %s up" % args.scenario, flush=True)
        while not stopping.wait(0.1):
            pass
    finally:
        lab.stop()
        try:
            os.remove(os.path.join(args.state_dir, STATE_FILE))
        except FileNotFoundError:
            pass
        print("lab: stopped", flush=True)
    # Every component was stopped above; skip the interpreter's wait for the worker threads that
    # aiohttp and moto leave behind (seconds of nothing).
    sys.stdout.flush()
    os._exit(0)


def _healthy(state) -> bool:
    """The lab of ``state`` answers on its admin endpoint (a live pid alone may be a reused one)."""
    from .admin import LabClient  # pylint: disable=import-outside-toplevel
    try:
        return bool(_is_lab(state["pid"]) and LabClient(state["endpoints"]["admin"], timeout=2).health()["ok"])
    except (OSError, ValueError, KeyError):
        return False


def cmd_up(args) -> int:
    state = read_state(args.state_dir)
    if state and _healthy(state):
        if state["scenario"] == args.scenario:
            print("lab: %s is already up (pid %d)" % (args.scenario, state["pid"]))
            return 0
        print("lab: %s is up (pid %d); run `python -m tests.lab down` first" % (state["scenario"], state["pid"]),
              file=sys.stderr)
        return 1
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    try:
        os.remove(os.path.join(args.state_dir, STATE_FILE))
    except FileNotFoundError:
        pass
    log_path = os.path.join(args.state_dir, "lab.log")
    began = time.monotonic()
    with open(log_path, "w") as log:
        child = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "tests.lab", "serve", args.scenario, "--state-dir", args.state_dir,
             "--factor", str(args.factor)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    while time.monotonic() - began < UP_TIMEOUT:
        state = read_state(args.state_dir)
        if state and state.get("ready"):
            print(json.dumps({"scenario": args.scenario, "pid": child.pid, "seconds": round(time.monotonic() - began, 2),
                              "endpoints": state["endpoints"], "files": state["files"]}, indent=2))
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.05)
    with open(log_path) as log:
        tail = log.read()[-3000:]
    if child.poll() is None:
        child.terminate()
    print("lab: %s did not come up; its log (%s) ends with:\n%s" % (args.scenario, log_path, tail), file=sys.stderr)
    return 1


def cmd_down(args) -> int:
    state = read_state(args.state_dir)
    if not state:
        print("lab: nothing is up in %s" % args.state_dir)
        return 0
    pid = state["pid"]
    if _is_lab(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    try:
        os.remove(os.path.join(args.state_dir, STATE_FILE))
    except FileNotFoundError:
        pass
    still_open = [url for url in state["endpoints"].values() if _port_open(url)]
    if still_open:
        print("lab: stopped pid %d but these are still listening: %s" % (pid, ", ".join(still_open)), file=sys.stderr)
        return 1
    print("lab: %s down (pid %d stopped, %d ports free)" % (state["scenario"], pid, len(state["endpoints"])))
    return 0


def cmd_status(args) -> int:
    state = read_state(args.state_dir)
    if not state or not _alive(state["pid"]):
        print("lab: down")
        return 3
    print(json.dumps(state, indent=2, sort_keys=True))
    return 0


def cmd_reset(args) -> int:
    state = read_state(args.state_dir)
    if not state:
        print("lab: nothing to reset; use `up SCENARIO`", file=sys.stderr)
        return 1
    args.scenario, args.factor = state["scenario"], state["clock_factor"]
    return cmd_down(args) or cmd_up(args)


def cmd_scenarios(args) -> int:  # pylint: disable=unused-argument
    from .scenarios import scenario_names
    print("\n".join(scenario_names()))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--state-dir", default=os.environ.get("CIRCLECI_LAB_STATE_DIR", DEFAULT_STATE_DIR))
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "serve"):
        p = sub.add_parser(name)
        p.add_argument("scenario")
        p.add_argument("--factor", type=float, default=100.0, help="lab seconds per wall second")
    for name in ("down", "status", "reset", "scenarios"):
        sub.add_parser(name)
    args, rest = parser.parse_known_args(argv)
    # --state-dir may also follow the sub-command.
    if rest:
        extra = argparse.ArgumentParser()
        extra.add_argument("--state-dir")
        extra_args = extra.parse_args(rest)
        if extra_args.state_dir:
            args.state_dir = extra_args.state_dir
    args.state_dir = os.path.abspath(args.state_dir)
    return {"up": cmd_up, "serve": cmd_serve, "down": cmd_down, "status": cmd_status, "reset": cmd_reset,
            "scenarios": cmd_scenarios}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
