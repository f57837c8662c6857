"""The lab for nomad_client_roll: AWS (moto) or GCP stand-in, Nomad stand-in, the world, a job feeder.

Every test gets a fresh Nomad and world on one lab clock; the AWS lab is started once per module
(moto's state is process-wide) and reset per test. The module runs in process (``roll``), or through the
role and ansible-playbook (the role test), with ``clock_factor`` set to the lab clock's factor, so its
durations are lab seconds.
"""
from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path

import pytest

from tests.lab.aws import AwsLab
from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.gcp_mig import GcpMigLab
from tests.lab.nomad import NomadLab
from tests.lab.world import JobFeeder, World

FACTOR = 200.0
BOOT = 90.0
TOKEN = "roll-lab-token-0f3e"
PROJECT, ZONE, REGION = "lab-project", "us-east1-b", "us-east1"


class RollLab:
    """One test's lab: clock, log, faults, the clouds, Nomad, the world and the feeder."""

    def __init__(self, clock, log, faults, aws=None, gcp=None):
        self.clock = clock
        self.log = log
        self.faults = faults
        self.aws = aws
        self.gcp = gcp
        self.nomad = NomadLab(clock, log, faults, token=TOKEN)
        self.nomad.start()
        self.world = None
        self.feeder = None
        self.kube = None

    def start_world(self, rate_per_minute=6.0, duration_range=(60.0, 300.0), seed=1):
        self.world = World(self.clock, self.nomad, gcp=self.gcp, aws=self.aws is not None, aws_lock=self.aws.lock if self.aws else None,
                           aws_region=self.aws.region if self.aws else "us-east-1", boot_delay=BOOT, poll_interval=2.0)
        self.world.start()
        if rate_per_minute:
            self.feeder = JobFeeder(self.clock, self.nomad, rate_per_minute=rate_per_minute, duration_range=duration_range, seed=seed)
            self.feeder.start()

    def let_time_pass(self, lab_seconds):
        time.sleep(self.clock.wall_seconds(lab_seconds))

    def stop(self):
        for part in (self.feeder, self.world, self.kube):
            if part is not None:
                part.stop()
        self.nomad.stop()

    def start_kube(self, tmp_path, replicas=1):
        """A Kubernetes API stand-in with the Nomad Autoscaler's deployment; returns the module arguments that pause it."""
        from tests.lab.kube import KubeApiServer, write_kubeconfig
        self.kube = KubeApiServer(self.clock, self.log, self.faults)
        url = self.kube.start()
        self.kube.create({"apiVersion": "apps/v1", "kind": "Deployment",
                          "metadata": {"name": "nomad-autoscaler", "namespace": "circleci-server"},
                          "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "nomad-autoscaler"}},
                                   "template": {"metadata": {"labels": {"app": "nomad-autoscaler"}},
                                                "spec": {"containers": [{"name": "autoscaler", "image": "hashicorp/nomad-autoscaler:0.4.5"}]}}}})
        return {"kubeconfig": write_kubeconfig(str(tmp_path / "kubeconfig"), url), "autoscaler_deployment": "nomad-autoscaler"}

    def autoscaler_replicas(self):
        return self.kube.get("apps/v1", "Deployment", "circleci-server", "nomad-autoscaler")["spec"]["replicas"]

    def autoscaler_scales(self):
        """The replicas the roll set, in order, from the request log."""
        return [e for e in self.mutations("kube") if e["path"].endswith("/deployments/nomad-autoscaler/scale")]

    def mutations(self, service=None):
        return [e for e in RequestLog.read(self.log.path) if service is None or e["service"] == service]

    def base_args(self, regional=False):
        args = {"nomad_address": self.nomad.base_url, "nomad_token": TOKEN, "clock_factor": FACTOR, "poll_interval": 10,
                "boot_timeout": 600, "timeout": 20000}
        if self.aws is not None:
            args.update(provider="aws", region=self.aws.region, endpoint_url=self.aws.url, aws_access_key="testing",
                        aws_secret_key="testing")
        else:
            args.update(provider="gcp", project=PROJECT, gcp_base_url=self.gcp.base_url + "/compute/v1", gcp_auth_kind="none",
                        **({"region": REGION} if regional else {"zone": ZONE}))
        return args


@pytest.fixture(scope="module")
def lab_clock():
    return LabClock(FACTOR)


@pytest.fixture(scope="module")
def aws_lab_module(tmp_path_factory, lab_clock):
    log = RequestLog(str(tmp_path_factory.mktemp("roll-aws") / "requests.jsonl"), lab_clock)
    lab = AwsLab(lab_clock, log, FaultInjector())
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def aws_roll_lab(aws_lab_module, lab_clock):
    aws_lab_module.reset()
    aws_lab_module.request_log.clear()
    aws_lab_module.faults.clear()
    lab = RollLab(lab_clock, aws_lab_module.request_log, aws_lab_module.faults, aws=aws_lab_module)
    yield lab
    lab.stop()


@pytest.fixture
def gcp_roll_lab(tmp_path, lab_clock):
    log = RequestLog(str(tmp_path / "requests.jsonl"), lab_clock)
    faults = FaultInjector()
    gcp = GcpMigLab(lab_clock, log, faults, op_delay=2.0, create_delay=20.0, delete_delay=10.0)
    gcp.start()
    lab = RollLab(lab_clock, log, faults, gcp=gcp)
    yield lab
    lab.stop()
    gcp.stop()


@pytest.fixture
def roll(tmp_path):
    """Runs the module's ``main()`` in this process, as ansible-playbook would run it, minus ansible-playbook's own start-up
    (15-20 s a run on a loaded 2-core machine, most of these tests' time); returns (result dict, the module's output).
    The role test goes through ansible-playbook, as an operator runs it."""
    collections = str(Path(__file__).resolve().parents[3] / ".cache" / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible.module_utils.testing import patch_module_args  # pylint: disable=import-outside-toplevel
    from ansible_collections.circleci.server.plugins.modules import nomad_client_roll  # pylint: disable=import-outside-toplevel

    def _roll(args, check_mode=False):
        out = io.StringIO()
        # a module temp dir, should the module want one, under the test's temp dir (the default is ~/.ansible/tmp)
        module_args = dict(args, _ansible_check_mode=check_mode, _ansible_remote_tmp=str(tmp_path / "module-tmp"))
        with patch_module_args(module_args), contextlib.redirect_stdout(out):
            with contextlib.suppress(SystemExit):
                nomad_client_roll.main()
        return json.loads(out.getvalue()), out.getvalue()
    return _roll
