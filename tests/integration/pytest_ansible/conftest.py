"""pytest-ansible's fixtures come from the plugin; a venv made before it was pinned says so plainly."""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("pytest_ansible") is None:
    @pytest.fixture
    def localhost():
        pytest.fail("pytest-ansible is not installed in this venv: run hacking/setup.sh (requirements/test.txt pins it)")
