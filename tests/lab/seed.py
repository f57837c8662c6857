"""Bring a scenario's world up: start the stand-ins it needs and seed them from ``scenario.yaml``.

Order matters: the cluster first (the release is installed with the real helm binary), then the
cloud (its ids go into the operator's values file), then Nomad and the world (instances become
Nomad nodes), then the release, the backup, the scripted logs. The request log is emptied at the end:
seeding is not something a playbook did.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import re
import subprocess
import time

import requests

from . import datastores
from . import yaml_c
from .charts import chart_path
from .kube import KubeApiServer, write_kubeconfig
from .scenarios import load_scenario, release_steps, write_values_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO_ROOT, ".venv", "bin")


def bring_up(lab) -> None:
    scenario = load_scenario(lab.scenario_name)
    lab.scenario = scenario
    if scenario.get("kind") == "kots-3.x":  # a 3.x install as KOTS left it: tests/lab/seed_kots.py
        from .seed_kots import bring_up_kots  # pylint: disable=import-outside-toplevel
        bring_up_kots(lab, scenario)
        return
    if scenario.get("kind") == "migrate-2.19":  # a 2.19 box and a 3.x cluster, real PostgreSQL: tests/lab/migrate219.py
        from .migrate219 import bring_up_migrate219  # pylint: disable=import-outside-toplevel
        bring_up_migrate219(lab, scenario)
        return
    if scenario.get("kind") == "box-2.19":  # a 2.19 services box over SSH and its Nomad clients: tests/lab/box/
        from .box import bring_up_box  # pylint: disable=import-outside-toplevel
        bring_up_box(lab, scenario)
        return
    with _phase("kube"):
        _start_kube(lab, scenario)
    ids = {}
    with _phase(scenario["cloud"]):
        if scenario["cloud"] == "aws":
            ids = _seed_aws(lab, scenario)
        else:
            _seed_gcp(lab, scenario)
    with _phase("nomad"):
        _start_nomad(lab, scenario)
    if scenario["helm"].get("installed", True):
        with _phase("release"):
            _seed_release(lab, scenario, ids)
    with _phase("registry"):
        _start_registry(lab)
    _write_inventory(lab, scenario)
    lab.request_log.clear()


@contextlib.contextmanager
def _phase(name):
    began = time.monotonic()
    yield
    print("lab: seeded %s in %.2fs" % (name, time.monotonic() - began), flush=True)


# --------------------------------------------------------------------------------------------- kube
def _start_kube(lab, scenario):
    kube_spec = scenario["kubernetes"]
    version = re.match(r"v?(\d+\.\d+\.\d+)", str(kube_spec["version"])).group(1)
    lab.kube = KubeApiServer(lab.clock, lab.request_log, lab.faults, kubernetes_version=version,
                             platform=kube_spec.get("distribution", "eks"),
                             region=(scenario.get("aws") or scenario.get("gcp") or {}).get("region", "us-east-1"))
    url = lab.kube.start()
    lab.register_stopper(lab.kube.stop)
    lab.endpoints["kube"] = url
    lab.files["kubeconfig"] = write_kubeconfig(os.path.join(lab.state_dir, "kubeconfig"), url, kube_spec["namespace"])


def _helm(lab, *args):
    env = dict(os.environ, KUBECONFIG=lab.files["kubeconfig"], HELM_CACHE_HOME=os.path.join(lab.state_dir, "helm", "cache"),
               HELM_CONFIG_HOME=os.path.join(lab.state_dir, "helm", "config"),
               HELM_DATA_HOME=os.path.join(lab.state_dir, "helm", "data"))
    helm = os.path.join(VENV_BIN, "helm") if os.path.exists(os.path.join(VENV_BIN, "helm")) else "helm"
    proc = subprocess.run([helm] + list(args), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("seeding: helm %s failed: %s" % (" ".join(args[:2]), proc.stderr.strip()))
    return proc.stdout


def _seed_release(lab, scenario, ids):
    kube_spec = scenario["kubernetes"]
    namespace = kube_spec["namespace"]
    lab.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for secret in kube_spec.get("extra_secrets") or []:
        lab.kube.create(_registry_secret(namespace, secret))
    journal = lab.files["datastores"] = os.path.join(lab.state_dir, "datastores.jsonl")
    lab.datastores = datastores.install(lab.kube, namespace, scenario.get("datastores"), journal)
    release = scenario["helm"]["release"]
    seed_values = os.path.join(lab.state_dir, "seed-values.yaml")
    for step in release_steps(scenario):
        write_values_file(scenario, seed_values, ids=ids, extra_overrides=step["extra_overrides"])
        verb = "install" if step["revision"] == 1 else "upgrade"
        _helm(lab, verb, release, chart_path(step["version"]), "--namespace", namespace, "--values", seed_values)
    os.remove(seed_values)
    # The operator's values file, as they keep it: comments, secrets, mode 0600.
    lab.files["values"] = write_values_file(scenario, os.path.join(lab.state_dir, "values.yaml"), ids=ids)
    pvc = (scenario.get("tink") or {}).get("leftover_vault_pvc")
    if pvc and lab.kube.get("v1", "PersistentVolumeClaim", namespace, pvc["name"]) is None:
        lab.kube.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": pvc["name"], "namespace": namespace, "labels": pvc.get("labels") or {}},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": pvc.get("size", "10Gi")}}}})
    _seed_velero(lab, scenario)
    _script_logs(lab, scenario)


def _registry_secret(namespace, secret):
    auth = base64.b64encode(("%s:%s" % (secret["username"], secret["password"])).encode()).decode()
    config = {"auths": {secret["registry"]: {"username": secret["username"], "password": secret["password"], "auth": auth}}}
    return {"apiVersion": "v1", "kind": "Secret", "type": secret.get("type", "kubernetes.io/dockerconfigjson"),
            "metadata": {"name": secret["name"], "namespace": namespace},
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def _rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed_velero(lab, scenario):
    velero = scenario.get("velero") or {}
    backup = velero.get("backup")
    namespace = velero.get("namespace", "velero")
    lab.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    if not backup:
        return
    # Backups are judged against the wall clock (their timestamps come from Velero's), not lab time.
    completed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=float(backup.get("age_hours", 0)))
    started = completed - datetime.timedelta(minutes=float(backup.get("duration_minutes", 5)))
    ttl_hours = float(str(backup.get("ttl", "720h")).split("h", maxsplit=1)[0])
    lab.kube.create({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": backup["name"], "namespace": namespace, "labels": backup.get("labels") or {},
                     "creationTimestamp": _rfc3339(started)},
        "spec": {"includedNamespaces": backup.get("included_namespaces") or [], "storageLocation": backup.get("storage_location", "default"),
                 "ttl": backup.get("ttl", "720h0m0s")},
        "status": {"phase": backup.get("phase", "Completed"), "errors": int(backup.get("errors", 0)),
                   "warnings": int(backup.get("warnings", 0)), "startTimestamp": _rfc3339(started),
                   "completionTimestamp": _rfc3339(completed),
                   "expiration": _rfc3339(completed + datetime.timedelta(hours=ttl_hours)), "version": 1},
    })


def _script_logs(lab, scenario):
    namespace = scenario["kubernetes"]["namespace"]
    for workload, by_minor in (scenario.get("logs") or {}).items():
        lab.kube.set_logs(namespace, workload, _VersionedLog(lab.clock, by_minor))


class _VersionedLog:
    """A workload's scripted log: the lines of the server minor its pod runs, each shown once its time came.

    The minor comes from the pod's ``app.kubernetes.io/version``-like labels or its image tag; ``at`` is in
    lab seconds after the pod was created (the lab clock at creation is kept in an annotation by the
    stand-in, or the pod's first log read when absent).
    """

    def __init__(self, clock, by_minor):
        self.clock = clock
        self.by_minor = {str(k): v for k, v in by_minor.items()}
        self._first_seen = {}

    def __call__(self, pod) -> list:
        minor = _pod_minor(pod)
        entries = self.by_minor.get(minor) or []
        uid = pod["metadata"].get("uid") or pod["metadata"]["name"]
        started = self._first_seen.setdefault(uid, self.clock.now())
        elapsed = self.clock.now() - started
        return [entry["line"] for entry in entries if float(entry.get("at", 0)) <= elapsed]


def _pod_minor(pod) -> str:
    labels = pod["metadata"].get("labels") or {}
    for key in ("app.kubernetes.io/version", "version", "chart-version"):
        if labels.get(key):
            return ".".join(str(labels[key]).split(".")[:2])
    for container in (pod.get("spec") or {}).get("containers") or []:
        tag = str(container.get("image", "")).rpartition(":")[2]
        if tag.count(".") >= 1 and tag.split(".")[0].isdigit():
            return ".".join(tag.split(".")[:2])
    return ""


# ---------------------------------------------------------------------------------------------- aws
def _seed_aws(lab, scenario) -> dict:
    from .aws import AwsLab  # pylint: disable=import-outside-toplevel
    spec = scenario["aws"]
    lab.aws = AwsLab(lab.clock, lab.request_log, lab.faults, region=spec["region"])
    lab.endpoints["aws"] = lab.aws.start()
    lab.register_stopper(lab.aws.stop)
    lab.files["aws_env"] = lab.aws.write_env_file(os.path.join(lab.state_dir, "aws.env"))
    ec2, iam, asg, s3 = (lab.aws.client(name) for name in ("ec2", "iam", "autoscaling", "s3"))
    ids = {}
    vpc = spec["vpc"]
    ids[vpc["id"]] = ec2.create_vpc(CidrBlock=vpc["cidr"])["Vpc"]["VpcId"]
    for subnet in vpc["subnets"]:
        ids[subnet["id"]] = ec2.create_subnet(VpcId=ids[vpc["id"]], CidrBlock=subnet["cidr"],
                                              AvailabilityZone=subnet["az"])["Subnet"]["SubnetId"]
    issuer = scenario["kubernetes"].get("oidc_issuer")
    if issuer:
        iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["sts.amazonaws.com"],
                                            ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"])
    if spec.get("nomad_clients"):  # an account ready for a first install has neither (aws-empty)
        _seed_aws_nomad_clients(ec2, asg, spec, ids)
    if spec.get("vm_service"):
        _seed_aws_vm_service(ec2, iam, spec, ids)
    _seed_aws_object_storage(s3, iam, spec, issuer)
    lab.ids = ids
    return ids


def _seed_aws_nomad_clients(ec2, asg, spec, ids):
    vpc = spec["vpc"]
    clients = spec["nomad_clients"]
    template = clients["launch_template"]
    groups = [template["security_group"]] + ([spec["vm_service"]["security_group"]] if spec.get("vm_service") else [])
    for group in groups:
        ids[group["id"]] = _security_group(ec2, group, ids[vpc["id"]])
    image = template["image"]
    ids[image["id"]] = ec2.register_image(Name=image["name"], RootDeviceName="/dev/sda1", Architecture="x86_64",
                                          VirtualizationType="hvm")["ImageId"]
    tags = [{"Key": k, "Value": str(v)} for k, v in (template.get("tags") or {}).items()]
    ec2.create_launch_template(LaunchTemplateName=template["name"], LaunchTemplateData={
        "ImageId": ids[image["id"]], "InstanceType": template["instance_type"],
        "SecurityGroupIds": [ids[template["security_group"]["id"]]],
        "UserData": base64.b64encode(template.get("user_data", "").encode()).decode(),
        "MetadataOptions": {"HttpTokens": template.get("metadata_http_tokens", "optional")},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}] if tags else []})
    group = clients["asg"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group["name"], MinSize=group["min_size"], MaxSize=group["max_size"],
        DesiredCapacity=group["desired_capacity"],
        LaunchTemplate={"LaunchTemplateName": template["name"], "Version": str(group.get("launch_template_version", "$Latest"))},
        VPCZoneIdentifier=",".join(ids[s] for s in group["subnets"]),
        Tags=[{"Key": k, "Value": str(v), "PropagateAtLaunch": True} for k, v in (group.get("tags") or {}).items()])


def _seed_aws_vm_service(ec2, iam, spec, ids):
    vpc = spec["vpc"]
    image = spec["nomad_clients"]["launch_template"]["image"]
    role = spec["vm_service"]["iam_role"]
    iam.create_role(RoleName=role["name"], AssumeRolePolicyDocument=json.dumps(role["trust_policy"]))
    for name, document in (role.get("inline_policies") or {}).items():
        iam.put_role_policy(RoleName=role["name"], PolicyName=name, PolicyDocument=json.dumps(document))
    for vm in spec["vm_service"].get("leftover_vms") or []:
        ec2.run_instances(ImageId=ids[image["id"]], InstanceType=vm.get("instance_type", "m5.large"), MinCount=1, MaxCount=1,
                          SubnetId=ids.get(vm.get("subnet"), ids[vpc["subnets"][0]["id"]]),
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [
                              {"Key": k, "Value": str(v)} for k, v in dict(vm.get("tags") or {}, Name=vm.get("name", "vm")).items()]}])
    for volume in spec["vm_service"].get("dlc_volumes") or []:
        ec2.create_volume(Size=volume["size_gb"], AvailabilityZone=volume["az"], TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": k, "Value": str(v)} for k, v in (volume.get("tags") or {}).items()]}])


def _seed_aws_object_storage(s3, iam, spec, issuer):
    storage = spec.get("object_storage") or {}
    if storage.get("bucket"):
        s3.create_bucket(Bucket=storage["bucket"]["name"])
        if storage["bucket"].get("versioning") == "Enabled":
            s3.put_bucket_versioning(Bucket=storage["bucket"]["name"], VersioningConfiguration={"Status": "Enabled"})
    if storage.get("iam_role") and issuer:
        provider = issuer.split("://", 1)[1]
        subject = storage["iam_role"].get("trust_subject")
        # no subject: the role trusts the provider for the STS audience only (no service account yet)
        condition = {provider + ":sub": subject} if subject else {provider + ":aud": "sts.amazonaws.com"}
        iam.create_role(RoleName=storage["iam_role"]["name"], AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
                "Principal": {"Federated": spec["oidc_provider_arn"]},
                "Condition": {"StringEquals": condition}}]}))


def _security_group(ec2, group, vpc_id) -> str:
    group_id = ec2.create_security_group(GroupName=group["name"], Description=group.get("description") or group["name"],
                                         VpcId=vpc_id)["GroupId"]
    permissions = [{"IpProtocol": rule.get("protocol", "tcp"), "FromPort": rule["port_from"], "ToPort": rule["port_to"],
                    "IpRanges": [dict({"CidrIp": rule["cidr"]}, **({"Description": rule["description"]} if rule.get("description") else {}))]}
                   for rule in group.get("ingress") or []]
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


# ---------------------------------------------------------------------------------------------- gcp
def _seed_gcp(lab, scenario):
    from .gcp_compute import GcpComputeLab  # pylint: disable=import-outside-toplevel
    spec = scenario["gcp"]
    lab.gcp = GcpComputeLab(lab.clock, lab.request_log, lab.faults)
    url = lab.endpoints["gcp"] = lab.gcp.start()
    lab.register_stopper(lab.gcp.stop)
    project = spec["project"]
    if spec.get("nomad_clients"):  # a project ready for a first install has none (gcp-empty)
        _seed_gcp_nomad_clients(lab, spec)
    for rule in (spec.get("vm_service") or {}).get("firewall_rules") or []:
        lab.gcp.create_firewall(project, rule["name"], rule["network"], [
            {"IPProtocol": allowed["protocol"], **({"ports": [str(p) for p in allowed["ports"]]} if allowed.get("ports") else {})}
            for allowed in rule["allowed"]], rule.get("source_ranges"), rule.get("target_tags"))
    for vm in (spec.get("vm_service") or {}).get("leftover_vms") or []:
        lab.gcp.create_vm(project, vm.get("zone", spec["zone"]), vm["name"], vm.get("labels"), vm.get("finishes_after_seconds"))
    for account in ((spec.get("vm_service") or {}).get("service_account"), (spec.get("object_storage") or {}).get("service_account")):
        if not account:
            continue
        account_id = account["email"].split("@", 1)[0]
        email = lab.gcp.create_service_account(project, account_id)
        policy = account.get("iam_policy")
        if policy:
            current = requests.post("%s/v1/projects/%s/serviceAccounts/%s:getIamPolicy" % (url, project, email), json={}, timeout=10).json()
            body = {"policy": {"bindings": policy.get("bindings") or [], "etag": current.get("etag"), "version": policy.get("version", 1)}}
            response = requests.post("%s/v1/projects/%s/serviceAccounts/%s:setIamPolicy" % (url, project, email), json=body, timeout=10)
            response.raise_for_status()


def _seed_gcp_nomad_clients(lab, spec):
    project = spec["project"]
    template = spec["nomad_clients"]["instance_template"]
    lab.gcp.create_template(project, template["name"], {
        "machineType": template["machine_type"], "tags": {"items": template.get("tags") or []},
        "labels": template.get("labels") or {},
        "metadata": {"items": [{"key": k, "value": v} for k, v in (template.get("metadata") or {}).items()]},
        "disks": [{"boot": True, "initializeParams": {"sourceImage": template["source_image"], "diskType": template["disk_type"],
                                                      "diskSizeGb": str(template["disk_size_gb"])}}],
        "networkInterfaces": [{"network": template["network"], "subnetwork": template["subnetwork"]}]})
    mig = spec["nomad_clients"]["mig"]
    lab.gcp.create_mig(project, mig["zone"], mig["name"], template["name"], mig["target_size"], mig.get("base_instance_name"))


# -------------------------------------------------------------------------------------------- nomad
def _start_nomad(lab, scenario):
    from .nomad import NomadLab  # pylint: disable=import-outside-toplevel
    from .world import JobFeeder, World  # pylint: disable=import-outside-toplevel
    spec = scenario.get("nomad") or {}
    lab.nomad = NomadLab(lab.clock, lab.request_log, lab.faults, datacenter=spec.get("datacenter", "default"))
    lab.endpoints["nomad"] = lab.nomad.start()
    lab.register_stopper(lab.nomad.stop)
    groups = None
    if scenario["cloud"] == "aws" and scenario["aws"].get("nomad_clients"):
        groups = [scenario["aws"]["nomad_clients"]["asg"]["name"]]
    lab.world = World(lab.clock, lab.nomad, gcp=lab.gcp, aws=lab.aws is not None,
                      aws_region=(scenario.get("aws") or {}).get("region", "us-east-1"),
                      boot_delay=float(spec.get("boot_delay_seconds", 60)), node_class=spec.get("node_class", "linux-64bit"),
                      aws_lock=lab.aws.lock if lab.aws else None, aws_groups=groups)
    lab.world.start()
    lab.register_stopper(lab.world.stop)
    jobs = spec.get("jobs")
    if jobs:
        low, high = jobs.get("duration_seconds", [60, 600])
        lab.feeder = JobFeeder(lab.clock, lab.nomad, rate_per_minute=60.0 / float(jobs.get("interval_seconds", 20)),
                               duration_range=(float(low), float(high)))
        lab.feeder.start()
        lab.register_stopper(lab.feeder.stop)


# ----------------------------------------------------------------------------------------- registry
REGISTRY_USERNAME = "lab-registry-user"


def _start_registry(lab):
    """The chart registry the 4.x scenarios point the playbooks at: an OCI registry that requires a login
    (``tests/lab/registry.py``), holding every stand-in chart; its credentials in a 0600 vars file."""
    import secrets  # pylint: disable=import-outside-toplevel
    from .charts import VERSIONS, chart_archive  # pylint: disable=import-outside-toplevel
    from .registry import OciRegistry  # pylint: disable=import-outside-toplevel
    password = "lab-fake-registry-password-" + secrets.token_hex(6)
    lab.registry = OciRegistry(lab.clock, lab.request_log, lab.faults, username=REGISTRY_USERNAME, password=password)
    lab.endpoints["registry"] = lab.registry.start()
    lab.register_stopper(lab.registry.stop)
    for version in VERSIONS:
        lab.registry.push_chart(chart_archive(version))
    credentials = {"circleci_registry_username": REGISTRY_USERNAME, "circleci_registry_password": password}
    # Next to the inventory (group_vars/all), so that ansible-playbook -i inventory.yml finds them; the same
    # in registry-credentials.yml for a play that loads vars.yml (molecule). Both 0600: they hold the password.
    group_vars = os.path.join(lab.state_dir, "group_vars", "all")
    os.makedirs(group_vars, mode=0o700, exist_ok=True)
    for path in (os.path.join(group_vars, "registry.yml"), os.path.join(lab.state_dir, "registry-credentials.yml")):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            yaml_c.safe_dump(credentials, handle)
    lab.files["registry_credentials"] = os.path.join(lab.state_dir, "registry-credentials.yml")


# ------------------------------------------------------------------------------------------ outputs
def _chart_repository(lab) -> str:
    """A local chart repository (``circleci-server-<version>.tgz``), what an air-gapped install points the playbooks at."""
    from .charts import VERSIONS, chart_archive  # pylint: disable=import-outside-toplevel
    directory = os.path.join(lab.state_dir, "charts")
    os.makedirs(directory, exist_ok=True)
    for version in VERSIONS:
        link = os.path.join(directory, "circleci-server-%s.tgz" % version)
        if not os.path.exists(link):
            os.symlink(chart_archive(version), link)
    return directory


def _newest_chart() -> str:
    from .charts import NEWEST  # pylint: disable=import-outside-toplevel
    return NEWEST


def _write_inventory(lab, scenario):
    """The inventory the collection's playbooks run with against this lab (no secret in it)."""
    cloud = scenario["cloud"]
    variables = {
        "ansible_connection": "local",
        "ansible_python_interpreter": os.path.join(VENV_BIN, "python"),
        "circleci_lab": True,
        "circleci_cloud": cloud,
        "circleci_namespace": scenario["kubernetes"]["namespace"],
        "circleci_release_name": scenario["helm"]["release"],
        "circleci_kubeconfig": lab.files["kubeconfig"],
        "circleci_nomad_address": lab.endpoints["nomad"],
        "circleci_lab_admin_url": lab.endpoints["admin"],
    }
    if "values" in lab.files:
        variables["circleci_values_file"] = lab.files["values"]
    if cloud == "aws":
        spec = scenario["aws"]
        variables.update(circleci_aws_region=spec["region"], circleci_aws_endpoint_url=lab.endpoints["aws"])
        if spec.get("vm_service"):
            variables.update(
                circleci_aws_irsa_role_name=spec["vm_service"]["iam_role"]["name"],
                circleci_aws_vm_service_security_group_id=lab.ids[spec["vm_service"]["security_group"]["id"]])
        if spec.get("nomad_clients"):
            variables["circleci_aws_nomad_asg_name"] = spec["nomad_clients"]["asg"]["name"]
        if (spec.get("object_storage") or {}).get("bucket"):
            variables["circleci_object_storage_bucket"] = spec["object_storage"]["bucket"]["name"]
    else:
        spec = scenario["gcp"]
        variables.update(
            circleci_gcp_project=spec["project"],
            circleci_gcp_zone=spec["zone"],
            circleci_gcp_base_url=lab.endpoints["gcp"],
            circleci_gcp_auth_kind="none",  # the stand-in takes anonymous requests
        )
        if spec.get("vm_service"):
            variables["circleci_gcp_vm_service_account"] = spec["vm_service"]["service_account"]["email"]
        if spec.get("nomad_clients"):
            variables["circleci_gcp_nomad_mig_name"] = spec["nomad_clients"]["mig"]["name"]
    install = scenario.get("install") or {}
    if install:
        # What an operator's inventory for install.yml says (no secret), and the recorded Terraform outputs.
        variables.update(install.get("inventory") or {})
        variables["circleci_target_version"] = str(install.get("target_version") or _newest_chart())
        if install.get("terraform_outputs"):
            variables["circleci_nomad_terraform_outputs_file"] = install["terraform_outputs"]
    # The default of an installed 4.x release: the OCI registry (login required), as cciserver.azurecr.io; the
    # directory (an air-gapped install) stays as circleci_lab_chart_directory, and is the default before an install.
    variables["circleci_lab_chart_directory"] = _chart_repository(lab)
    variables["circleci_chart_repository"] = (
        "oci://%s/circleci-server" % lab.registry.host
        if getattr(lab, "registry", None) and scenario["helm"].get("installed", True)
        else variables["circleci_lab_chart_directory"])
    # Lab time runs fast: poll it as often.
    variables.update(helm_upgrade_ready_delay=1, post_upgrade_migration_poll=1, post_upgrade_migration_timeout=60)
    inventory = {"all": {"hosts": {"localhost": variables}}}
    vars_path = os.path.join(lab.state_dir, "vars.yml")
    with open(vars_path, "w") as handle:
        yaml_c.safe_dump({k: v for k, v in variables.items() if not k.startswith("ansible_")}, handle, sort_keys=True)
    lab.files["vars"] = vars_path
    path = os.path.join(lab.state_dir, "inventory.yml")
    with open(path, "w") as handle:
        handle.write("# Written by `python -m tests.lab up %s`: the lab's endpoints for the collection's playbooks.\n" % lab.scenario_name)
        yaml_c.safe_dump(inventory, handle, default_flow_style=False, sort_keys=True)
    lab.files["inventory"] = path
