# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 20: every malformed or hostile input is refused cleanly (or, for leaks, masked); one test per input."""
from __future__ import annotations

import pytest

from ansible_collections.circleci.server.tests.unit.plugins.modules.hostile_inputs import (
    ISSUE,
    all_cases,
    judge,
    run_case,
)

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_is_answered_cleanly(case, tmp_path):
    outcome = run_case(case, str(tmp_path))
    assert judge(outcome) == [], outcome.message


def test_every_input_the_issue_lists_has_a_case():
    issue = [case for case in CASES if case.origin == ISSUE]
    classes = {case.klass for case in CASES}
    assert len(issue) >= 25
    for klass in classes:
        own = [case for case in CASES if case.klass == klass and case.origin != ISSUE]
        assert len(own) >= 3, klass


def test_the_judge_catches_a_module_that_accepts_a_bad_version(tmp_path):
    """A test that cannot fail is a defect: the runner and judge, given a lenient parser, report the case."""
    case = next(c for c in CASES if c.ident == "server_version_info.target_version=rc1")
    lenient = ("ansible_collections.circleci.server.plugins.modules.server_version_info.normalise_version",
               lambda value, name: value)
    problems = judge(run_case(type(case)(**dict(vars(case), patches=(lenient,), ident="lenient")), str(tmp_path)))
    assert problems and "not refused" in problems[0] or "message" in " ".join(problems)
