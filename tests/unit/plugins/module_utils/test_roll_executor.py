# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roll's behaviour against in-memory fakes of the group and of Nomad, with a fake clock."""

from __future__ import annotations

import pytest

from ansible_collections.circleci.server.plugins.module_utils.roll.executor import RollOptions, Roller, RollStopped
from ansible_collections.circleci.server.plugins.module_utils.roll.model import ProviderError, RollError
from ansible_collections.circleci.server.tests.unit.plugins.module_utils.roll_fakes import FakeClock, FakeNomad, FakeProvider, World


def make(size=6, job_lengths=(), feed_every=0, has_state=True, max_size=None, feed_length=60, **options):
    clock = FakeClock()
    world = World(clock, size=size, job_lengths=job_lengths, feed_every=feed_every, max_size=max_size, feed_length=feed_length)
    world.new_template()
    opts = dict(batch_size="2", drain_deadline=600, boot_timeout=300, poll_interval=5, timeout=20000)
    opts.update(options)
    roller = Roller(FakeProvider(world, has_state=has_state), FakeNomad(world), RollOptions(**opts), clock)
    return world, roller


def rerun(world, has_state=True, **options):
    opts = dict(batch_size="2", drain_deadline=600, boot_timeout=300, poll_interval=5, timeout=20000)
    opts.update(options)
    return Roller(FakeProvider(world, has_state=has_state), FakeNomad(world), RollOptions(**opts), world.clock)


def assert_all_current(world, size):
    assert world.desired == size
    assert len(world.instances) == size
    assert all(i["template"] == world.template for i in world.instances.values())


def test_full_roll_replaces_every_client_without_killing_a_job():
    world, roller = make(job_lengths=[120, 300, 200, 450, 30, 90, 500, 60], feed_every=20, feed_length=60)
    original = set(world.instances)
    result = roller.run()
    assert result["changed"] is True
    assert set(result["replaced"]) == original
    assert len(result["replaced"]) == len(set(result["replaced"]))
    assert result["killed"] == 0 and world.killed == [] and world.violations == []
    assert_all_current(world, 6)
    assert world.min_ready_eligible() >= 6
    assert result["min_ready_eligible"] >= 6
    assert result["capacity_floor"] == 6
    assert [len(b["instances"]) for b in result["batches"]] == [2, 2, 2]
    assert all(b["surge"] == 2 for b in result["batches"])
    assert result["allocations_drained"] > 0
    # max size was raised for the surge and put back; the scaling processes are resumed; no state is left
    assert world.max_size == 6 and world.suspended == set() and world.state is None
    for event in result["batches"]:
        assert event["started"] <= event["ready"] <= event["drain_started"] <= event["drained"] <= event["terminated"] <= event["finished"]
        assert event["ready"] - event["started"] >= 90  # the replacements had to boot


def test_no_old_node_is_terminated_before_its_replacements_are_ready():
    world, roller = make(job_lengths=[100] * 6)
    seen = []
    original_terminate = world.terminate

    def checking_terminate(ids):
        seen.append((len(world.instances), world.ready_eligible()))
        original_terminate(ids)
    world.terminate = checking_terminate
    roller.run()
    # at every termination, the group's ready eligible nodes (the batch's excluded, as ineligible) were >= desired
    assert seen and all(ready >= 6 for _count, ready in seen)


def test_rerun_after_complete_roll_changes_nothing():
    world, roller = make()
    roller.run()
    before = list(world.mutations)
    result = rerun(world).run()
    assert result["changed"] is False
    assert result["replaced"] == [] and result["batches"] == []
    assert world.mutations == before


def test_plan_reads_only_and_shows_batches_and_floor():
    world, roller = make(max_unavailable=1, batch_size="50%")
    plan = roller.plan()
    assert world.mutations == []
    assert plan["batch_size"] == 3
    assert [len(b) for b in plan["batches"]] == [3, 3]
    assert plan["capacity_floor"] == 5
    assert plan["surge"] == [2, 2]
    assert plan["peak_desired"] == 8
    assert len(plan["outdated"]) == 6 and plan["up_to_date"] == []


def test_drain_past_deadline_without_force_stops_safely_and_resumes():
    world, roller = make(job_lengths=[2000, 10, 10, 10, 10, 10], drain_deadline=300)
    with pytest.raises(RollStopped) as info:
        roller.run()
    message = str(info.value)
    assert "drain_deadline=300" in message and "Nothing was terminated" in message and "force_after_deadline" in message
    assert world.killed == [] and world.violations == []
    assert world.terminated == []  # the first batch holds the long job
    # safe capacity: the surge is kept, the drained batch still runs its job
    assert world.desired == 8 and world.ready_eligible() >= 6
    assert info.value.result["batches"][0]["instances"] == ["i-001", "i-002"]
    # AZRebalance stays suspended while the group is surged: it could terminate undrained nodes to balance zones
    assert world.state == {"desired": 6, "max_size": 6, "suspended": ["AZRebalance"]}
    assert world.suspended == {"AZRebalance"}
    assert any("AZRebalance stays suspended" in w for w in info.value.result["warnings"])
    # later, with the job done, a re-run finishes the roll from where it stopped
    world.clock.sleep(2000)
    result = rerun(world).run()
    assert result["killed"] == 0 and world.violations == []
    assert sorted(world.terminated) == ["i-001", "i-002", "i-003", "i-004", "i-005", "i-006"]
    assert len(world.terminated) == len(set(world.terminated))
    assert result["batches"][0]["surge"] == 0  # the surge of the interrupted batch was reused
    assert_all_current(world, 6)
    assert world.state is None and world.max_size == 6 and world.suspended == set()


def test_force_after_deadline_kills_and_reports():
    world, roller = make(job_lengths=[2000, 10, 10, 10, 10, 10], drain_deadline=300, force_after_deadline=True)
    result = roller.run()
    assert result["killed"] == 1
    assert result["batches"][0]["killed"] == 1
    assert world.violations == []  # Nomad stopped the job; nothing was terminated under a running job
    assert_all_current(world, 6)
    drains = [m for m in world.mutations if m[0] == "drain"]
    assert drains and all(m[2] == 300 for m in drains)


def test_without_force_nomad_gets_no_deadline():
    world, roller = make(job_lengths=[250] * 6)
    roller.run()
    drains = [m for m in world.mutations if m[0] == "drain"]
    assert drains and all(m[2] == 0 for m in drains)


def test_every_node_of_a_batch_is_ineligible_before_any_drain():
    world, roller = make(job_lengths=[250] * 6)
    roller.run()
    ops = [m for m in world.mutations if m[0] in ("eligibility", "drain")]
    for start in range(0, len(ops), 4):
        chunk = ops[start:start + 4]
        assert [m[0] for m in chunk] == ["eligibility", "eligibility", "drain", "drain"]


def test_node_that_never_becomes_ready_stops_before_draining():
    world, roller = make(job_lengths=[50] * 6, boot_timeout=200)
    world.never_ready.update({"i-007"})
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert "boot_timeout=200" in str(info.value) and "i-007" in str(info.value)
    assert world.terminated == []
    assert not [m for m in world.mutations if m[0] in ("drain", "eligibility")]
    assert world.desired == 8


def test_fault_at_termination_of_batch_two_then_rerun_replaces_nothing_twice():
    world, roller = make(job_lengths=[100] * 6)
    world.faults["terminate"] = 2
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert "injected fault" in str(info.value)
    assert world.terminated == ["i-001", "i-002"]
    assert world.desired == 8
    result = rerun(world).run()
    assert len(world.terminated) == len(set(world.terminated)) == 6
    assert result["replaced"] == ["i-003", "i-004", "i-005", "i-006"]
    assert result["batches"][0]["surge"] == 0
    assert_all_current(world, 6)
    assert world.violations == [] and world.killed == []


def test_gcp_like_provider_without_state_resumes_from_drain_metadata():
    world, roller = make(job_lengths=[100] * 6, has_state=False)
    world.faults["terminate"] = 2
    with pytest.raises(RollStopped):
        roller.run()
    assert world.desired == 8
    rerun(world, has_state=False).run()
    assert_all_current(world, 6)


def test_max_unavailable_surges_less_and_keeps_the_floor():
    world, roller = make(job_lengths=[100] * 6, max_unavailable=1)
    result = roller.run()
    assert all(b["surge"] == 1 for b in result["batches"])
    assert world.min_ready_eligible() >= 5
    assert result["capacity_floor"] == 5
    assert world.max_size == 6
    assert_all_current(world, 6)
    assert world.violations == [] and world.killed == []


def test_no_head_room_without_raise_max_size_fails_before_any_change():
    world, roller = make(raise_max_size=False)
    with pytest.raises(RollError) as info:
        roller.run()
    assert "raise_max_size" in str(info.value)
    assert world.mutations == []


def test_timeout_stops_safely():
    world, roller = make(job_lengths=[5000] * 6, drain_deadline=10000, timeout=400)
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert "timeout=400" in str(info.value)
    assert world.terminated == [] and world.killed == []


def test_polls_are_bounded():
    world, roller = make(job_lengths=[100] * 6, poll_interval=7)
    roller.run()
    assert world.clock.sleeps and max(world.clock.sleeps) <= 7


def test_invalid_options_are_explained():
    with pytest.raises(RollError, match="max_unavailable"):
        RollOptions(max_unavailable=-1).validate()
    with pytest.raises(RollError, match="drain_deadline"):
        RollOptions(drain_deadline=0).validate()


def test_a_blocker_stops_the_roll_before_any_change_and_shows_in_the_plan():
    world, roller = make()
    describe = roller.provider.describe

    def blocked():
        group = describe()
        group.blockers.append("PROACTIVE update policy")
        return group
    roller.provider.describe = blocked
    assert "PROACTIVE update policy" in roller.plan()["warnings"]
    with pytest.raises(RollError, match="PROACTIVE"):
        roller.run()
    assert world.mutations == []


def test_instances_without_a_nomad_node_are_replaced_without_drain():
    world, roller = make(job_lengths=[300] * 5)
    # i-006 never registered with Nomad (a broken boot): it is replaced like the others, with nothing to drain
    del world.nodes["node-i-006"]
    world.never_ready.add("i-006")
    result = roller.run()
    # first: it costs nothing to remove and gives no capacity
    assert "i-006" in result["replaced"] and result["batches"][0]["without_node"] == ["i-006"]
    assert_all_current(world, 6)
    assert world.violations == [] and world.killed == []


# -- found when tried as an operator would ---------------------------------------------------------------

def test_rerun_after_a_boot_failure_keeps_the_capacity_floor():
    """Bad image: the surge never joins Nomad; the template is fixed; the re-run must not drain healthy nodes
    without surge (the surged, broken instances are outdated too and give no capacity)."""
    world, roller = make(job_lengths=[300] * 6, boot_timeout=200)
    world.never_ready.update({"i-007", "i-008"})
    with pytest.raises(RollStopped, match="boot_timeout"):
        roller.run()
    assert world.desired == 8
    world.new_template("v3")  # the fixed template; i-007 and i-008 (v2) are outdated now
    started = world.clock.t
    result = rerun(world).run()
    assert world.min_ready_eligible(after=started) >= 6
    assert result["min_ready_eligible"] >= 6
    assert world.violations == [] and world.killed == []
    assert_all_current(world, 6)
    assert result["batches"][0]["instances"] == ["i-007", "i-008"] and result["batches"][0]["without_node"] == ["i-007", "i-008"]


def test_force_after_deadline_on_a_rerun_reaches_nodes_already_draining_without_deadline():
    world, roller = make(job_lengths=[5000, 10, 10, 10, 10, 10], drain_deadline=300)
    with pytest.raises(RollStopped, match="drain_deadline=300"):
        roller.run()
    node = world.nodes["node-i-001"]
    assert node["DrainStrategy"]["Deadline"] == 0
    result = rerun(world, drain_deadline=300, force_after_deadline=True).run()
    redrains = [m for m in world.mutations if m[0] == "drain" and m[1] == "node-i-001"]
    assert [m[2] for m in redrains] == [0, 300]
    assert result["killed"] == 1 and world.violations == []
    assert_all_current(world, 6)


def test_desired_changed_by_someone_else_stops_the_roll():
    world, roller = make(job_lengths=[100] * 6)
    original = world.tick

    def autoscaler_scales_in():
        original()
        if world.clock.t == 40 and world.desired == 8:
            world.desired = 7  # a scale-in by another scaler, during the first batch's boot
    world.tick = autoscaler_scales_in
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert "changed behind the roll's back: 7, the roll expected 8" in str(info.value)
    assert world.terminated == [] and not [m for m in world.mutations if m[0] in ("drain", "eligibility")]


def test_an_instance_refresh_started_mid_roll_stops_it_before_the_drain():
    world, roller = make(job_lengths=[100] * 6)
    started = {}
    original = world.tick

    def refresh_starts():
        original()
        if world.clock.t == 40:
            started["at"] = 40  # someone starts an instance refresh while the first batch boots
    world.tick = refresh_starts
    roller.provider.conflicts = lambda: ["An instance refresh (r-1, InProgress) runs on clients."] if started else []
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert "instance refresh" in str(info.value)
    assert world.terminated == [] and not [m for m in world.mutations if m[0] in ("drain", "eligibility")]


@pytest.mark.parametrize("surged", [True, False])
def test_a_group_autoscaler_stays_off_after_a_stop_only_while_the_group_is_surged(surged):
    world, roller = make(job_lengths=[2000, 10, 10, 10, 10, 10], drain_deadline=300)
    resumed = []
    roller.provider.suspend_scaling = lambda: ["autoscaler-mode=clients-as=ON"]
    roller.provider.resume_scaling = resumed.extend
    if not surged:
        original = world.tick

        def scaled_back():
            original()
            if world.clock.t == 40:
                world.desired = 6  # someone scaled the group back to its size during the boot: the roll stops, unsurged
        world.tick = scaled_back
    with pytest.raises(RollStopped) as info:
        roller.run()
    if surged:  # the drain outlasted its deadline, the group stays surged: turned on, the autoscaler would scale in busy nodes
        assert resumed == [] and world.state["suspended"] == ["autoscaler-mode=clients-as=ON"]
        assert any("autoscaler stays OFF" in w for w in info.value.result["warnings"])
    else:
        assert "changed behind the roll's back" in str(info.value)
        assert resumed == ["autoscaler-mode=clients-as=ON"] and world.state["suspended"] == []


def test_partial_termination_is_reported_in_replaced():
    world, roller = make(job_lengths=[50] * 6)
    terminate = world.terminate

    def fails_on_the_second(ids):
        terminate(ids[:1])
        if len(ids) > 1:
            raise ProviderError("injected fault after one termination")
    world.terminate = fails_on_the_second
    with pytest.raises(RollStopped) as info:
        roller.run()
    assert info.value.result["replaced"] == ["i-001"]


def test_an_unexpected_exception_still_puts_back_processes_max_size_and_lock():
    world, roller = make(job_lengths=[50] * 6)
    world.faults["terminate"] = 1
    original = roller.provider.terminate

    def crash(ids):
        raise KeyError("a bug")
    roller.provider.terminate = crash
    with pytest.raises(KeyError):
        roller.run()
    assert world.suspended == {"AZRebalance"}  # ScheduledActions resumed; AZRebalance waits for the roll to finish
    assert world.max_size == 8  # the surged group needs it: never below the desired size
    assert world.lock is None
    roller.provider.terminate = original
    world.faults.clear()
    rerun(world).run()
    assert world.max_size == 6 and world.suspended == set() and world.lock is None


def test_a_second_concurrent_roll_is_refused_by_the_lock():
    world, roller = make(job_lengths=[50] * 6)
    world.lock = {"owner": "other-host:4242:abcd", "until": "2099-01-01T00:00:00Z"}
    plan = roller.plan()
    assert any("holds the roll lock" in w for w in plan["warnings"])
    with pytest.raises(RollError, match="holds the roll lock"):
        roller.run()
    assert world.mutations == []


def test_the_lock_is_taken_for_the_roll_and_released():
    world, roller = make(job_lengths=[50] * 6)
    owners = []
    terminate = world.terminate

    def spy(ids):
        owners.append(dict(world.lock or {}))
        terminate(ids)
    world.terminate = spy
    roller.run()
    assert owners and all(o.get("owner") == roller.owner for o in owners)
    assert world.lock is None


def test_max_unavailable_not_below_desired_is_refused():
    world, roller = make(max_unavailable=6)
    with pytest.raises(RollError, match="max_unavailable=6 is not below the desired size 6"):
        roller.run()
    assert world.mutations == []


def test_min_size_above_desired_minus_max_unavailable_is_refused():
    world, roller = make(max_unavailable=2)
    world.min_size = 5
    with pytest.raises(RollError, match="MinSize 5"):
        roller.run()
    assert world.mutations == []


def test_full_surge_replaces_everything_in_one_drain_within_boot_plus_longest_job():
    world, roller = make(job_lengths=[400, 100, 200, 300, 50, 150], max_size=12, strategy="auto")
    plan = roller.plan()
    assert plan["strategy"] == "surge" and "full surge" in plan["strategy_reason"] and len(plan["batches"]) == 1
    started = world.clock.t
    result = roller.run()
    assert len(result["batches"]) == 1 and result["batches"][0]["surge"] == 6
    assert world.violations == [] and world.killed == []
    assert world.min_ready_eligible(after=started) >= 6
    assert_all_current(world, 6)
    assert world.max_size == 12
    # boot (90) + longest job (400), plus a few polls
    assert result["duration"] <= 1.2 * (90 + 400)


def test_auto_takes_the_largest_surge_the_head_room_allows():
    world, roller = make(job_lengths=[100] * 6, max_size=9, strategy="auto")
    plan = roller.plan()
    assert plan["strategy"] == "surge" and plan["batch_size"] == 3 and "leaves room for 3" in plan["strategy_reason"]
    result = roller.run()
    assert [b["surge"] for b in result["batches"]] == [3, 3]
    assert world.max_size == 9 and not [m for m in world.mutations if m[0] == "set_max_size"]
    assert_all_current(world, 6)


def test_auto_without_head_room_is_batch_and_says_why():
    world, roller = make(strategy="auto")
    plan = roller.plan()
    assert plan["strategy"] == "batch" and "no head-room" in plan["strategy_reason"]


@pytest.mark.parametrize("fault", ["drain", "terminate"])  # between surge and drain; between drain and terminate
@pytest.mark.parametrize("strategy", ["batch", "surge", "window"])
def test_each_strategy_resumes_after_a_fault_without_replacing_twice(strategy, fault):
    world, roller = make(job_lengths=[100] * 6, strategy=strategy)
    world.faults[fault] = 1
    with pytest.raises(RollStopped, match="injected fault"):
        roller.run()
    assert world.desired == (12 if strategy == "surge" else 8)
    world.faults.clear()
    rerun(world, strategy=strategy).run()
    assert len(world.terminated) == len(set(world.terminated)) == 6
    assert_all_current(world, 6)
    assert world.max_size == 6 and world.suspended == set() and world.state is None
    assert world.violations == [] and world.killed == []


# -- the Nomad Autoscaler ------------------------------------------------------------------------------------

class FakeAutoscaler:
    """A deployment's scale, recording into the world's mutations so the order with the roll's steps shows."""

    label = "deployment circleci-server/nomad-autoscaler"

    def __init__(self, world, replicas=1):
        self.world = world
        self.spec = replicas

    def replicas(self):
        return self.spec

    def pause(self):
        self.world.mutations.append(("autoscaler", 0))
        self.spec = 0

    def resume(self, replicas):
        self.world.mutations.append(("autoscaler", replicas))
        self.spec = replicas


def with_autoscaler(roller, replicas=2):
    roller.pauser = FakeAutoscaler(roller.provider.world, replicas)
    return roller.pauser


def test_the_autoscaler_is_paused_for_the_roll_and_restored_exactly():
    world, roller = make(job_lengths=[100] * 6)
    autoscaler = with_autoscaler(roller, replicas=2)
    plan = roller.plan()
    assert plan["autoscaler"] == {"target": autoscaler.label, "replicas": 2, "action": "scaled to 0 for the roll, then back to 2"}
    assert world.mutations == []
    result = roller.run()
    kinds = [m[0] for m in world.mutations]
    assert kinds.index("autoscaler") < kinds.index("set_capacity")  # paused before the first surge
    assert [m for m in world.mutations if m[0] == "autoscaler"] == [("autoscaler", 0), ("autoscaler", 2)]
    assert autoscaler.spec == 2 and result["autoscaler"]["paused"] is False
    assert_all_current(world, 6)


def test_the_autoscaler_is_restored_after_an_injected_failure():
    world, roller = make(job_lengths=[100] * 6)
    autoscaler = with_autoscaler(roller, replicas=3)
    world.faults["terminate"] = 2
    with pytest.raises(RollStopped, match="injected fault"):
        roller.run()
    assert autoscaler.spec == 3
    assert "autoscaler_replicas" not in world.state


def test_the_autoscaler_is_restored_after_an_unexpected_exception():
    world, roller = make(job_lengths=[100] * 6)
    autoscaler = with_autoscaler(roller, replicas=1)

    def crash(ids):
        raise KeyError("a bug")
    roller.provider.terminate = crash
    with pytest.raises(KeyError):
        roller.run()
    assert autoscaler.spec == 1


def test_a_rerun_after_a_crash_while_paused_puts_back_the_recorded_replicas_not_zero():
    world, roller = make(job_lengths=[100] * 6)
    autoscaler = with_autoscaler(roller, replicas=0)  # the crashed run had scaled it to 0 ...
    world.state = {"desired": 6, "max_size": 6, "suspended": [], "autoscaler_replicas": 2}  # ... after recording 2
    assert roller.plan()["autoscaler"]["replicas"] == 2
    roller.run()
    assert autoscaler.spec == 2


def test_window_keeps_the_batch_peak_and_lets_each_node_go_when_its_own_jobs_end():
    def lab(strategy):
        # one job per client, fed all the time, one in three long: a batch of two often waits for a long one, the window
        # lets the other node go and takes the next
        clock = FakeClock()
        world = World(clock, size=6, slots=1, feed_every=5, feed_length=[500, 40, 40])
        world.new_template()
        clock.sleep(300)
        options = RollOptions(batch_size="2", drain_deadline=1500, boot_timeout=300, poll_interval=5, timeout=20000, strategy=strategy)
        return world, Roller(FakeProvider(world), FakeNomad(world), options, clock)
    batch_world, batch_roller = lab("batch")
    batch = batch_roller.run()
    assert batch_world.killed == [] and batch_world.violations == []
    world, roller = lab("window")
    plan = roller.plan()
    assert plan["strategy"] == "window" and plan["batch_size"] == 2 and plan["peak_desired"] == 8 == batch["plan"]["peak_desired"]
    peaks = []
    original = world.set_desired

    def recording(desired, record=True):
        peaks.append(desired)
        original(desired, record)
    world.set_desired = recording
    result = roller.run()
    assert max(peaks) == 8  # never above the batch's peak
    assert world.violations == [] and world.killed == [] and result["killed"] == 0
    assert world.min_ready_eligible(after=300) >= 6 and result["min_ready_eligible"] >= 6
    assert sorted(result["replaced"]) == sorted(batch["replaced"]) and len(set(result["replaced"])) == 6
    assert_all_current(world, 6)
    assert world.state is None and world.max_size == 6 and world.suspended == set()
    assert result["duration"] < 0.75 * batch["duration"], (result["duration"], batch["duration"])


def test_window_resumes_after_a_fault_without_replacing_twice():
    world, roller = make(job_lengths=[300, 60, 60, 60, 60, 60], strategy="window")
    original = set(world.instances)
    world.faults["terminate"] = 2  # the second termination fails
    with pytest.raises(RollStopped) as info:
        roller.run()
    first = info.value.result["replaced"]
    assert 0 < len(first) < 6 and world.violations == []
    result = rerun(world, strategy="window").run()
    assert result["plan"]["resuming"] is True
    assert sorted(first + result["replaced"]) == sorted(original)
    assert world.violations == [] and world.killed == []
    assert world.min_ready_eligible() >= 6
    assert_all_current(world, 6)


def test_window_drain_past_its_deadline_stops_without_killing_and_keeps_the_other_replacements():
    world, roller = make(job_lengths=[2000, 10, 10, 10, 10, 10], drain_deadline=300, strategy="window")
    with pytest.raises(RollStopped) as info:
        roller.run()
    message = str(info.value)
    assert message.startswith("The window: the drain of node(s) node-i-001 did not finish within drain_deadline=300s"), message
    assert "They were not terminated and no job was killed" in message
    assert world.killed == [] and world.violations == [] and "i-001" not in world.terminated
    assert len(world.terminated) >= 1  # the nodes whose jobs ended left meanwhile
    assert world.ready_eligible() >= 6 and world.state["desired"] == 6
