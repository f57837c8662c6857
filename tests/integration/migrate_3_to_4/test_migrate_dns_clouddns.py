"""migrate_dns on GCP: the domain and app.<domain> pointed at the 4.0 load balancer in a Cloud DNS zone, with the
google.cloud modules the role uses, against the lab's Cloud DNS stand-in (tests/lab/gcp_dns.py, reached through
its HTTPS proxy as dns.googleapis.com).

One in-process lab (Kubernetes API as GKE: load balancers get an IP; GCP with a managed zone whose domain record
still points at the 3.x load balancer), three runs of the role alone (check.yml then main.yml, as the playbook
runs them): check mode with a second host whose zone does not hold the domain (refused) writes nothing; the run
replaces the stale record and adds app.<domain>, both A records of the load balancer's IP; the re-run changes
nothing.
"""
from __future__ import annotations

import json
import os
import re
import time

import pytest
import yaml

from tests.integration.conftest import REPO_ROOT
from tests.lab.core import FaultInjector, LabClock, RequestLog
from tests.lab.gcp import GcpLab
from tests.lab.gcp_dns import GoogleApisProxy
from tests.lab.kube import KubeApiServer, write_kubeconfig

PROJECT, NAMESPACE = "acme-gcp-project", "circleci-server"
ZONE, ZONE_DNS, DOMAIN = "acme-gcp", "acme-gcp.example.", "circleci.acme-gcp.example"
OLD_ADDRESS = "34.1.1.1"    # the 3.x KOTS load balancer the domain pointed at
PLAYBOOK = """
- name: migrate_dns alone, as migrate-3-to-4.yml runs it (the zone check first, the records after the upgrade)
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the DNS zone
      ansible.builtin.import_role:
        name: circleci.server.migrate_dns
        tasks_from: check.yml
    - name: Point the records at the load balancer
      ansible.builtin.import_role:
        name: circleci.server.migrate_dns
"""


@pytest.fixture(scope="module")
def dns_lab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("clouddns")
    clock = LabClock(100.0)
    log = RequestLog(str(directory / "requests.jsonl"), clock)
    faults = FaultInjector()
    kube = KubeApiServer(clock, log, faults, platform="gke")
    gcp = GcpLab(clock, log, faults)
    proxy = GoogleApisProxy(gcp, str(directory))
    try:
        kubeconfig = write_kubeconfig(str(directory / "kubeconfig"), kube.start())
        gcp.start()
        proxy.start()
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "circleci-proxy", "namespace": NAMESPACE},
                     "spec": {"type": "LoadBalancer", "selector": {"app": "circleci-proxy"},
                              "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}})
        gcp.dns.create_managed_zone(PROJECT, ZONE, ZONE_DNS)
        gcp.dns.create_managed_zone(PROJECT, "other", "other.example.")
        gcp.dns.records[(PROJECT, ZONE)][(DOMAIN + ".", "A")] = gcp.dns._rrset(  # pylint: disable=protected-access
            DOMAIN + ".", "A", 300, [OLD_ADDRESS])
        yield {"kube": kube, "gcp": gcp, "log": log, "kubeconfig": kubeconfig, "env": proxy.environment(),
               "directory": directory}
    finally:
        proxy.stop()
        gcp.stop()
        kube.stop()


def _address(kube):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        service = kube.get("v1", "Service", NAMESPACE, "circleci-proxy")
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if ingress:
            return ingress[0]["ip"]
        time.sleep(0.1)
    raise AssertionError("the lab gave circleci-proxy no load balancer address")


def _run(run, lab, tmp_path, name, *args):
    host = {"ansible_connection": "local", "ansible_python_interpreter": str(REPO_ROOT / ".venv" / "bin" / "python"),
            "kots_values_export": {"domain_name": DOMAIN}, "circleci_namespace": NAMESPACE,
            "circleci_kubeconfig": lab["kubeconfig"], "circleci_gcp_project": PROJECT,
            "circleci_gcp_auth_kind": "application", "circleci_gcp_dns_managed_zone": ZONE,
            "migrate_dns_address_retries": 3, "migrate_dns_address_delay": 1}
    inventory = {"all": {"hosts": {"good": host, "wrong_zone": dict(host, circleci_gcp_dns_managed_zone="other")}}}
    (tmp_path / (name + ".yml")).write_text(yaml.safe_dump(inventory))
    playbook = tmp_path / "migrate_dns.yml"
    playbook.write_text(PLAYBOOK)
    return run("ansible-playbook", "-i", str(tmp_path / (name + ".yml")), str(playbook), *args, check=False,
               env=lab["env"])


def _recap(output):
    return {host: dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", line))
            for host, line in re.findall(r"^(\w+)\s+:\s+(ok=.*)$", output, re.M)}


def test_cloud_dns_records_point_at_the_new_load_balancer(dns_lab, run, tmp_path):
    lab, gcp = dns_lab, dns_lab["gcp"]
    address = _address(lab["kube"])
    before = gcp.dns.record_sets(PROJECT, ZONE)
    lab["log"].clear()

    check = _run(run, lab, tmp_path, "check", "--check", "--diff")
    out = check.stdout + check.stderr
    assert check.returncode != 0, out[-3000:]
    recap = _recap(out)
    assert recap["wrong_zone"]["failed"] == 1 and recap["good"]["failed"] == 0, out[-3000:]
    assert "is other.example, which does not hold %s" % DOMAIN in out
    assert RequestLog.read(lab["log"].path) == [], "check mode wrote"
    assert gcp.dns.record_sets(PROJECT, ZONE) == before

    real = _run(run, lab, tmp_path, "real", "--limit", "good")
    out = real.stdout + real.stderr
    assert real.returncode == 0, out[-3000:]
    assert _recap(out)["good"]["changed"] == 1, out[-3000:]   # the loop over the two names
    records = {(r["name"], r["type"]): r for r in gcp.dns.record_sets(PROJECT, ZONE)}
    for name in (DOMAIN + ".", "app." + DOMAIN + "."):
        assert records[(name, "A")]["rrdatas"] == [address] and records[(name, "A")]["ttl"] == 300, records
    assert OLD_ADDRESS not in json.dumps(list(records.values()))
    soa = records[(ZONE_DNS, "SOA")]["rrdatas"][0].split()
    assert soa[2] == "3", "one SOA serial increment per change, as Cloud DNS clients do"
    changes = [e for e in RequestLog.read(lab["log"].path) if e["service"] == "gcp"]
    assert [e["path"] for e in changes] == ["/dns/v1/projects/%s/managedZones/%s/changes" % (PROJECT, ZONE)] * 2
    assert gcp.dns.record_sets(PROJECT, "other") == [r for r in gcp.dns.record_sets(PROJECT, "other")
                                                     if r["type"] in ("SOA", "NS")]

    lab["log"].clear()
    again = _run(run, lab, tmp_path, "again", "--limit", "good")
    out = again.stdout + again.stderr
    assert again.returncode == 0 and _recap(out)["good"]["changed"] == 0, out[-3000:]
    assert RequestLog.read(lab["log"].path) == []
    assert os.stat(lab["env"]["GOOGLE_APPLICATION_CREDENTIALS"]).st_mode & 0o077 == 0
