# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of circleci.server.planned_change (its documentation: plugins/modules/planned_change.py)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """In check mode, reports as changed what the real task of the same name would do; skipped in a real run."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("msg",))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        if not self._play_context.check_mode:
            result.update(skipped=True, skip_reason="a plan of check mode: the real task makes the change")
            return result
        # Shown at every verbosity, like debug: the plan is what the operator reads.
        result.update(changed=True, msg=self._task.args.get("msg", ""), _ansible_verbose_always=True)
        return result
