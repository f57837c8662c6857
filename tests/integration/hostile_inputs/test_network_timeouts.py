# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 20: against an endpoint that accepts and never answers (or refuses), every module fails in time, saying
where and which option to raise (request_timeout: 2 here; the default is 20 s)."""
from __future__ import annotations

import pytest

from tests.integration.hostile_inputs.network_cases import TIMEOUT, Blackhole, closed_port, network_cases

from ansible_collections.circleci.server.tests.unit.plugins.modules.hostile_inputs import (  # noqa: E402,I100  pylint: disable=wrong-import-order
    judge,
    run_case,
)

HOLE = Blackhole()
CASES = network_cases(HOLE.port, closed_port())


@pytest.fixture(scope="module", autouse=True)
def blackhole():
    # The timings below measure the network: the Kubernetes client's CoreV1Api (a 30 000-line module, compiled
    # at each import since hacking/env.sh sets PYTHONDONTWRITEBYTECODE) and botocore are imported up front.
    import botocore.session  # pylint: disable=import-outside-toplevel
    from kubernetes.client import CoreV1Api  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    botocore.session.get_session().create_client("s3", region_name="us-east-1", aws_access_key_id="a",
                                                 aws_secret_access_key="b")
    yield HOLE
    HOLE.close()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_network_call_is_bounded_and_named(case, tmp_path):
    outcome = run_case(case, str(tmp_path))
    assert judge(outcome) == [], outcome.message
    # Retries are counted in the budget: well under the default, near the 2 s asked for.
    assert outcome.seconds < TIMEOUT * 3 + 3, outcome.seconds
