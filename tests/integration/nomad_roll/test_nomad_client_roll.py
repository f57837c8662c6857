"""nomad_client_roll in the lab: AWS (launch template and launch configuration groups) and GCP, with jobs running."""
from __future__ import annotations

import json

from .conftest import BOOT, PROJECT, REGION, TOKEN

GROUP = "lab-circleci-nomad-clients-asg"
SIZE = 6


def aws_group(lab, launch_configuration=False, size=SIZE):
    ec2, autoscaling = lab.aws.client("ec2"), lab.aws.client("autoscaling")
    image = lab.aws.image_id()
    if launch_configuration:
        autoscaling.create_launch_configuration(LaunchConfigurationName="nomad-lc-1", ImageId=image, InstanceType="t3a.2xlarge")
        spec = {"LaunchConfigurationName": "nomad-lc-1"}
    else:
        ec2.create_launch_template(LaunchTemplateName="lab-nomad-clients-", LaunchTemplateData={"ImageId": image, "InstanceType": "t3a.2xlarge"})
        spec = {"LaunchTemplate": {"LaunchTemplateName": "lab-nomad-clients-", "Version": "$Latest"}}
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=0, MaxSize=size, DesiredCapacity=size,
                                          AvailabilityZones=[lab.aws.region + "a"], **spec)
    return ec2, autoscaling


def new_configuration(lab, launch_configuration=False):
    ec2, autoscaling = lab.aws.client("ec2"), lab.aws.client("autoscaling")
    if launch_configuration:
        autoscaling.create_launch_configuration(LaunchConfigurationName="nomad-lc-2", ImageId=lab.aws.image_id(), InstanceType="t3a.2xlarge",
                                                UserData="#!/bin/sh\necho server_endpoint=nomad.example.com:4647\n")
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, LaunchConfigurationName="nomad-lc-2")
    else:
        ec2.create_launch_template_version(LaunchTemplateName="lab-nomad-clients-", SourceVersion="1",
                                           LaunchTemplateData={"UserData": "IyEvYmluL3NoCmVjaG8gNC45Cg=="})


def asg(lab):
    return lab.aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def template_versions(lab, group):
    """The launch template version each instance was launched from (EC2's aws:ec2launchtemplate:version tag)."""
    ids = [i["InstanceId"] for i in group["Instances"]]
    reservations = lab.aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {t["Value"] for r in reservations for i in r["Instances"] for t in i.get("Tags", []) if t["Key"] == "aws:ec2launchtemplate:version"}


def settle(lab):
    """Jobs running on every client before the roll."""
    lab.start_world(rate_per_minute=8.0, duration_range=(60.0, 300.0))
    lab.let_time_pass(240)


def test_aws_launch_template_roll_kills_no_job(aws_roll_lab, roll):
    """Check mode, then the roll (in process: the role test goes through ansible-playbook)."""
    lab = aws_roll_lab
    aws_group(lab)
    settle(lab)
    new_configuration(lab)
    args = dict(lab.base_args(), group_name=GROUP, batch_size="2", drain_deadline=900)
    before = lab.mutations()

    plan, proc = roll(args, check_mode=True)
    assert plan["changed"] is True and not plan.get("failed"), plan
    assert [len(b) for b in plan["plan"]["batches"]] == [2, 2, 2]
    assert plan["plan"]["capacity_floor"] == SIZE and plan["plan"]["peak_desired"] == SIZE + 2
    assert "launch template version 1, the group uses version 2" in plan["plan"]["outdated"][0]["reason"]
    assert lab.mutations() == before, "check mode wrote something"

    started = lab.clock.now()
    old = {i["InstanceId"] for i in asg(lab)["Instances"]}
    result, out = roll(args)
    assert not result.get("failed"), result["msg"]
    assert TOKEN not in out
    assert result["changed"] is True and set(result["replaced"]) == old
    assert result["killed"] == 0 and lab.nomad.stats()["killed"] == 0
    assert lab.nomad.capacity_floor("ready_eligible", since=started) >= SIZE
    assert result["min_ready_eligible"] >= SIZE
    group = asg(lab)
    assert group["DesiredCapacity"] == SIZE and group["MaxSize"] == SIZE and not group["SuspendedProcesses"]
    assert template_versions(lab, group) == {"2"}
    assert not {i["InstanceId"] for i in group["Instances"]} & old
    assert not [t for t in group["Tags"] if t["Key"].startswith("circleci.server/")]
    for event in result["batches"]:
        assert event["ready"] - event["started"] >= BOOT * 0.9  # surged instances had to boot
        assert event["killed"] == 0
    # (the re-run that changes nothing: the role test, through ansible-playbook, and the GCP test)


def test_aws_batch_resumes_after_faults_between_surge_and_drain_and_between_drain_and_terminate(aws_roll_lab, roll):
    """Batches of 2 on a launch configuration group of 4; a throttled call on the way is retried."""
    lab = aws_roll_lab
    size = 4
    aws_group(lab, launch_configuration=True, size=size)
    settle(lab)
    new_configuration(lab, launch_configuration=True)
    old = {i["InstanceId"] for i in asg(lab)["Instances"]}
    lab.faults.add("aws", "POST", r"autoscaling/SetDesiredCapacity$", nth=1, status=400, message="Throttling: Rate exceeded")
    # batch 2's drains are the third and fourth: batch 2 is surged, then a drain fails
    lab.faults.add("nomad", "POST", r"/v1/node/[^/]+/drain$", nth=3, status=400, message="injected fault")
    args = dict(lab.base_args(), group_name=GROUP, batch_size="2", drain_deadline=900, strategy="batch")
    started = lab.clock.now()
    first, proc = roll(args)
    assert first["failed"] is True and "injected fault" in first["msg"], first["msg"]
    assert first["plan"]["strategy"] == "batch" and len(first["replaced"]) == 2
    assert asg(lab)["DesiredCapacity"] == size + 2  # batch 2's replacements are up, its old nodes still run
    throttled = [e for e in lab.mutations("aws") if e["path"] == "autoscaling/SetDesiredCapacity"]
    assert throttled[0]["status"] == 400 and throttled[1]["status"] == 200  # retried
    # the re-run drains batch 2 without a new surge, then one of its terminations fails
    lab.faults.add("aws", "POST", r"autoscaling/TerminateInstanceInAutoScalingGroup$", nth=1, status=400, message="ValidationError: injected fault")
    second, proc = roll(args)
    assert second["failed"] is True and "injected fault" in second["msg"], second["msg"]
    assert second["plan"]["resuming"] is True and second["batches"][0]["surge"] == 0  # the interrupted batch's replacements reused
    assert len(second["replaced"]) == 1  # the terminations run side by side: the other one went through, and is reported
    third, proc = roll(args)
    assert not third.get("failed"), third["msg"]
    replaced = first["replaced"] + second["replaced"] + third["replaced"]
    assert sorted(replaced) == sorted(old), "an instance was replaced twice, or one was left"
    assert len({i["instance_id"] for i in lab.world.instances()}) == 2 * size, "an instance was launched twice"
    group = asg(lab)
    assert group["DesiredCapacity"] == size and group["MaxSize"] == size and not group["SuspendedProcesses"]
    assert {i["LaunchConfigurationName"] for i in group["Instances"]} == {"nomad-lc-2"}
    assert lab.nomad.stats()["killed"] == 0
    assert lab.nomad.capacity_floor("ready_eligible", since=started) >= size


def test_short_drain_deadline_stops_safely(aws_roll_lab, roll):
    lab = aws_roll_lab
    aws_group(lab)
    lab.start_world(rate_per_minute=0)
    for number in range(SIZE * 4):  # every slot of every client (the stand-in bin-packs)
        lab.nomad.submit_job("long-%02d" % number, duration=200000)
    lab.let_time_pass(30)
    assert all(node["running"] == 4 for node in lab.nomad.nodes())
    new_configuration(lab)
    args = dict(lab.base_args(), group_name=GROUP, batch_size="2", drain_deadline=200)
    result, proc = roll(args)
    assert result["failed"] is True
    assert "did not finish within drain_deadline=200" in result["msg"] and "force_after_deadline" in result["msg"], result["msg"]
    assert result["replaced"] == [] and result["killed"] == 0
    assert lab.nomad.stats()["killed"] == 0
    assert not [e for e in lab.mutations("aws") if "TerminateInstance" in e["path"]]
    group = asg(lab)
    assert group["DesiredCapacity"] == SIZE + 2  # the batch's replacements stay; the old ones keep their jobs
    assert lab.nomad.capacity_floor("ready_eligible", since=lab.clock.now()) >= SIZE


def test_window_force_after_deadline_reports_what_nomad_killed_and_resumes_after_a_failed_termination(aws_roll_lab, roll):
    lab = aws_roll_lab
    aws_group(lab, size=2)
    lab.start_world(rate_per_minute=0)
    for number in range(3):
        lab.nomad.submit_job("long-%02d" % number, duration=200000)
    lab.let_time_pass(30)
    new_configuration(lab)
    old = {i["InstanceId"] for i in asg(lab)["Instances"]}
    # the sliding window: each old node's own drain deadline, and what Nomad killed at it, counted as each node leaves; the window's
    # first termination fails (a fault between drain and terminate), the re-run terminates the drained node (its replacement reused)
    lab.faults.add("aws", "POST", r"autoscaling/TerminateInstanceInAutoScalingGroup$", nth=1, status=400, message="ValidationError: injected fault")
    args = dict(lab.base_args(), group_name=GROUP, batch_size="1", drain_deadline=120, force_after_deadline=True, strategy="window")
    first, out = roll(args)
    assert first["plan"]["strategy"] == "window"
    assert first["failed"] is True and "injected fault" in first["msg"] and first["replaced"] == [], first["msg"]
    result, out = roll(args)
    assert not result.get("failed"), result["msg"]
    assert result["plan"]["resuming"] is True
    assert sorted(result["replaced"]) == sorted(old), "an instance was replaced twice, or one was left"
    assert len({i["instance_id"] for i in lab.world.instances()}) == 2 * 2, "an instance was launched twice"
    assert asg(lab)["DesiredCapacity"] == 2
    assert first["killed"] + result["killed"] == lab.nomad.stats()["killed"] == 3
    assert lab.nomad.stats()["killed_by_reason"] == {"drain_deadline": 3}


def test_role_updates_the_launch_template_then_rolls(aws_roll_lab, run, tmp_path):
    lab = aws_roll_lab
    aws_group(lab, size=4)
    settle(lab)
    base = lab.base_args()
    role_vars = {
        "nomad_clients_provider": "aws", "nomad_clients_group_name": GROUP, "nomad_clients_region": lab.aws.region,
        "nomad_clients_aws_endpoint_url": lab.aws.url, "nomad_clients_aws_access_key": "testing", "nomad_clients_aws_secret_key": "testing",
        "nomad_clients_launch_template_name": "lab-nomad-clients-", "nomad_clients_user_data": "#!/bin/sh\necho nomad 1.7.7\n",
        "nomad_clients_nomad_address": base["nomad_address"], "nomad_clients_nomad_token": TOKEN, "nomad_clients_batch_size": "2",
        "nomad_clients_drain_deadline": 900, "nomad_clients_clock_factor": base["clock_factor"], "nomad_clients_boot_timeout": 600,
    }
    out = tmp_path / "role-result.json"
    playbook = tmp_path / "role.yml"
    playbook.write_text("""
- hosts: localhost
  gather_facts: false
  vars: %s
  roles:
    - circleci.server.nomad_clients
  post_tasks:
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ nomad_clients_roll | to_nice_json }}"
        dest: %s
        mode: "0600"
      check_mode: false
""" % (json.dumps(role_vars), out))
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook), timeout=900)
    first = json.loads(out.read_text())
    assert len(first["replaced"]) == 4 and first["killed"] == 0 and lab.nomad.stats()["killed"] == 0
    assert template_versions(lab, asg(lab)) == {"2"}
    assert TOKEN not in proc.stdout + proc.stderr  # the module's no_log, through ansible-playbook
    proc = run("ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook), timeout=900)
    second = json.loads(out.read_text())
    assert second["changed"] is False
    assert TOKEN not in proc.stdout + proc.stderr
    versions = lab.aws.client("ec2").describe_launch_template_versions(LaunchTemplateName="lab-nomad-clients-")["LaunchTemplateVersions"]
    assert len(versions) == 2  # the same user data makes no third version


def test_aws_full_surge_resumes_after_faults_between_surge_and_drain_and_between_drain_and_terminate(aws_roll_lab, roll, tmp_path):
    """With a termination lifecycle hook on the group (as many installs have, for draining): each terminated instance waits in
    Terminating:Wait until the roll completes its action; a run that stops before the completion leaves it to the re-run."""
    lab = aws_roll_lab
    size = 4
    aws_group(lab, size=size)
    autoscaling = lab.aws.client("autoscaling")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MaxSize=2 * size)
    autoscaling.put_lifecycle_hook(AutoScalingGroupName=GROUP, LifecycleHookName="nomad-drain", HeartbeatTimeout=7200,
                                   LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", DefaultResult="CONTINUE")
    settle(lab)
    new_configuration(lab)
    old = {i["InstanceId"] for i in asg(lab)["Instances"]}
    # strategy auto: MaxSize has room; the Nomad Autoscaler's deployment paused for each run and put back
    args = dict(lab.base_args(), group_name=GROUP, batch_size="1", drain_deadline=900, **lab.start_kube(tmp_path, replicas=1))
    started = lab.clock.now()
    # 1. the first drain fails: every replacement is up, nothing drained
    lab.faults.add("nomad", "POST", r"/v1/node/[^/]+/drain$", nth=1, status=400, message="injected fault")
    first, proc = roll(args)
    assert first["failed"] is True and "injected fault" in first["msg"] and first["replaced"] == []
    assert first["plan"]["strategy"] == "surge" and first["plan"]["batches"] == [sorted(old)], first["plan"]
    assert lab.autoscaler_replicas() == 1 and len(lab.autoscaler_scales()) == 2  # 0, then back to 1 after the failure
    assert asg(lab)["DesiredCapacity"] == 2 * size
    # 2. the re-run drains, then the first termination fails
    lab.faults.add("aws", "POST", r"autoscaling/TerminateInstanceInAutoScalingGroup$", nth=1, status=400, message="ValidationError: injected fault")
    second, proc = roll(args)
    assert second["failed"] is True and "injected fault" in second["msg"], second["msg"]
    assert second["batches"][0]["surge"] == 0  # the surge of the first run was reused
    assert lab.autoscaler_replicas() == 1 and len(lab.autoscaler_scales()) == 4
    # 3. the re-run terminates what is left; the completion of the first termination's lifecycle action is refused
    lab.faults.add("aws", "POST", r"autoscaling/CompleteLifecycleAction$", nth=1, status=403, message="AccessDenied: injected fault")
    third, proc = roll(args)
    assert third["failed"] is True and "CompleteLifecycleAction" in third["msg"], third["msg"]
    held = [i["InstanceId"] for i in asg(lab)["Instances"] if i["LifecycleState"] == "Terminating:Wait"]
    assert len(held) == 1 and held[0] in third["replaced"]  # terminated, still held by the hook: no capacity, not left for good:
    # 4. the last re-run completes its action (drained by the roll, nothing running on it), and finishes the roll
    fourth, proc = roll(args)
    assert not fourth.get("failed"), fourth["msg"]
    assert fourth["plan"]["termination_hooks"] == ["nomad-drain"] and fourth["plan"]["lifecycle_actions"] == held
    assert not [i for i in asg(lab)["Instances"] if i["LifecycleState"].startswith("Terminating")]
    continued = [a["InstanceId"] for a in lab.aws.completed_lifecycle_actions() if a["LifecycleActionResult"] == "CONTINUE"]
    assert sorted(continued) == sorted(old), "a terminated instance was not let through its hook, or twice"
    assert set(second["replaced"]) | set(third["replaced"]) | set(fourth["replaced"]) == old
    assert len({i["instance_id"] for i in lab.world.instances()}) == 2 * size, "an instance was replaced twice"
    group = asg(lab)
    assert group["DesiredCapacity"] == size and group["MaxSize"] == 2 * size and not group["SuspendedProcesses"]
    assert not [t for t in group["Tags"] if t["Key"].startswith("circleci.server/")]
    assert lab.nomad.stats()["killed"] == 0
    assert lab.nomad.capacity_floor("ready_eligible", since=started) >= size
    # paused and put back by each run that had instances to replace (the fourth has none left when the third terminated the last)
    assert lab.autoscaler_replicas() == 1 and len(lab.autoscaler_scales()) == 6 + 2 * bool(fourth["plan"]["batches"])
    assert third["autoscaler"] == {"target": "deployment circleci-server/nomad-autoscaler", "paused": False, "replicas": 1}


def test_desired_changed_by_another_scaler_mid_roll_stops_the_roll(aws_roll_lab, roll, tmp_path):
    import threading
    lab = aws_roll_lab
    size = 4
    aws_group(lab, size=size)
    settle(lab)
    new_configuration(lab)
    autoscaling = lab.aws.client("autoscaling")
    stop = threading.Event()

    def autoscaler_scales_in():
        # the Nomad Autoscaler's AWS target: once the roll surged, it sets the group back to what it wants
        while not stop.is_set():
            if asg(lab)["DesiredCapacity"] > size:
                autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=size)
                return
            stop.wait(0.05)
    scaler = threading.Thread(target=autoscaler_scales_in, daemon=True)
    scaler.start()
    try:
        result, proc = roll(dict(lab.base_args(), group_name=GROUP, batch_size="2", drain_deadline=900, **lab.start_kube(tmp_path, replicas=2)))
    finally:
        stop.set()
        scaler.join(5)
    assert result["failed"] is True and "changed behind the roll's back" in result["msg"], result["msg"]
    assert result["replaced"] == []
    assert not [e for e in lab.mutations("nomad") if e["path"].endswith("/drain")]
    assert not [e for e in lab.mutations("aws") if "TerminateInstance" in e["path"]]
    assert lab.autoscaler_replicas() == 2 and len(lab.autoscaler_scales()) == 2  # paused, then put back though the roll failed
    assert result["killed"] == 0  # the roll killed nothing (the other scaler's scale-in did, which is why it must be paused)


def test_gcp_regional_group_with_its_autoscaler_resumes_after_a_stop_between_surge_and_drain(gcp_roll_lab, roll):
    """A regional group of 4 with server-terraform's defaults (no update policy, so GCP's PROACTIVE; an autoscaler, ON);
    instance_template given to the module: it sets the template with an OPPORTUNISTIC policy, turns the autoscaler OFF.
    The sliding window of 2 (the strategy's lab run: resume after a stop between surge and drain)."""
    lab = gcp_roll_lab
    size, scope, name = 4, "regions/" + REGION, "lab-nomad-client-group"
    lab.gcp.create_template(PROJECT, "nomad-clients-1")
    lab.gcp.create_template(PROJECT, "nomad-clients-2")
    lab.gcp.create_regional_mig(PROJECT, REGION, name, "nomad-clients-1", size, "lab-nomad-client")
    lab.gcp.create_autoscaler(PROJECT, scope, "lab-nomad-client-autoscaler", name, mode="ON", min_replicas=1, max_replicas=10)
    settle(lab)
    args = dict(lab.base_args(regional=True), group_name=name, batch_size="2", drain_deadline=900, instance_template="nomad-clients-2",
                strategy="window")
    before = lab.mutations()
    plan, proc = roll(args, check_mode=True)
    assert plan["plan"]["strategy"] == "window" and plan["plan"]["peak_desired"] == size + 2, plan
    assert [len(b) for b in plan["plan"]["batches"]] == [size] and lab.mutations() == before, plan
    assert plan["plan"]["group_scaling"] == ["autoscaler lab-nomad-client-autoscaler (mode ON): set to OFF for the roll, then back to ON"]
    old = {i["name"] for i in lab.gcp.instances(PROJECT, scope, name)}
    started = lab.clock.now()
    # 1. the window's replacements up, then its first drain fails: the group stays surged, its autoscaler OFF (ON, it would scale in)
    lab.faults.add("nomad", "POST", r"/v1/node/[^/]+/drain$", nth=1, status=400, message="injected fault")
    first, proc = roll(args)
    assert first["failed"] is True and "injected fault" in first["msg"] and first["replaced"] == [], first["msg"]
    mig = lab.gcp.mig(PROJECT, scope, name)
    assert mig["targetSize"] == size + 2 and mig["updatePolicy"]["type"] == "OPPORTUNISTIC"
    assert lab.gcp.autoscaler(PROJECT, scope, "lab-nomad-client-autoscaler")["autoscalingPolicy"]["mode"] == "OFF"
    record = lab.gcp.project_metadata(PROJECT)["circleci-server-nomad-client-roll--%s--%s" % (REGION, name)]
    assert '"desired":4' in record  # the target kept durably (project metadata), not the surged size
    # 2. the re-run resumes: back to 4, nothing replaced twice, the autoscaler ON again
    second, proc = roll(args)
    assert not second.get("failed"), second["msg"]
    assert second["plan"]["resuming"] is True and second["plan"]["target_desired"] == size
    assert len({i["instance_id"] for i in lab.world.instances()}) == 2 * size  # the first run's replacements reused, none twice
    assert set(second["replaced"]) == old and second["killed"] == 0 and lab.nomad.stats()["killed"] == 0
    instances = lab.gcp.instances(PROJECT, scope, name)
    assert len(instances) == size and {i["template"] for i in instances} == {"nomad-clients-2"}
    assert len({i["name"] for i in lab.gcp.removed}) == size, "an instance was replaced twice"
    mig = lab.gcp.mig(PROJECT, scope, name)
    assert mig["targetSize"] == size and not [k for k in lab.gcp.project_metadata(PROJECT) if k.startswith("circleci-server-nomad-client-roll")]
    assert lab.gcp.autoscaler(PROJECT, scope, "lab-nomad-client-autoscaler")["autoscalingPolicy"]["mode"] == "ON"
    assert lab.nomad.capacity_floor("ready_eligible", since=started) >= size
    again, proc = roll(args)
    assert again["changed"] is False, again


def test_the_bench_runs_from_the_checkout_as_documented_without_the_collection_path():
    """``python -m tests.bench.bench_nomad_client_roll`` from the checkout, with no ANSIBLE_COLLECTIONS_PATH (it failed with
    ModuleNotFoundError): ``--help`` imports everything the bench runs."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-m", "tests.bench.bench_nomad_client_roll", "--help"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and "--clients" in proc.stdout, proc.stderr[-2000:]
