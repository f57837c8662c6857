"""The scheduling table of tests/integration/conftest.py names files that exist (a renamed file would silently lose
its place at the front and could end the stage minutes after the other worker)."""
from __future__ import annotations

from .conftest import LONGEST_FIRST, REPO_ROOT


def test_every_file_of_the_longest_first_table_exists():
    assert [path for path in LONGEST_FIRST if not (REPO_ROOT / path).is_file()] == []
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
