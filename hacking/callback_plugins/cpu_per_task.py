"""Prints where a playbook run spends CPU: per task name, the controller's and its children's (workers, modules,
helm, kubectl) user+sys seconds, summed over the run, the 25 largest at the end (linear strategy; the lab's own CPU,
in another process, is not counted). A profiling aid for the test
harness (not shipped): ANSIBLE_CALLBACKS_ENABLED=cpu_per_task ANSIBLE_CALLBACK_PLUGINS=hacking/callback_plugins."""
from __future__ import annotations

import multiprocessing
import os
import resource
from collections import defaultdict

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: cpu_per_task
type: aggregate
short_description: CPU seconds per task (test harness profiling aid)
description: Sums the controller's and its reaped children's CPU between task starts, per task name and action.
requirements: [enable in ANSIBLE_CALLBACKS_ENABLED]
"""


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cpu_per_task"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._current = None
        self._mark = _cpu()
        self._start = self._mark
        self._spent = defaultdict(float)
        self._count = defaultdict(int)

    def _close(self):
        # A task's worker is reaped (its CPU then counted in RUSAGE_CHILDREN) only when ansible reuses its slot, after
        # the next task started: wait for the finished ones here, so that each task is charged its own CPU.
        for worker in multiprocessing.active_children():
            worker.join(0.5)
        now = _cpu()
        if self._current is not None:
            self._spent[self._current] += now - self._mark
        self._mark = now

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close()
        self._current = "%s [%s]" % (task.get_name(), task.action)
        self._count[self._current] += 1

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def v2_playbook_on_stats(self, stats):
        self._close()
        total = _cpu() - self._start
        by_action = defaultdict(float)
        for name, spent in self._spent.items():
            by_action[name.rsplit("[", 1)[1].rstrip("]")] += spent
        lines = ["CPU per task: %.1f s in all, %.1f s in %d task starts" % (total, sum(self._spent.values()), sum(self._count.values()))]
        for name, spent in sorted(self._spent.items(), key=lambda kv: -kv[1])[:25]:
            lines.append("%7.2f s %3dx %s" % (spent, self._count[name], name))
        lines.append("by action:")
        for action, spent in sorted(by_action.items(), key=lambda kv: -kv[1])[:15]:
            lines.append("%7.2f s %s" % (spent, action))
        path = os.environ.get("CPU_PER_TASK_FILE")
        text = "\n".join(lines) + "\n"
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text)
        else:
            self._display.display(text)
