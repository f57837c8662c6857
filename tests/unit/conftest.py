"""Unit-test settings. Hypothesis keeps its example database under the collection's ignored .cache/
(in ansible-test's copy of the collection), never in a .hypothesis/ at the root that a build would ship."""
from __future__ import annotations

from pathlib import Path

from hypothesis import configuration, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_HOME = Path(__file__).resolve().parents[2] / ".cache" / "hypothesis"
configuration.set_hypothesis_home_dir(_HOME)
settings.register_profile("circleci.server", database=DirectoryBasedExampleDatabase(str(_HOME / "examples")))
settings.load_profile("circleci.server")


def pytest_addoption(parser, pluginmanager):  # pylint: disable=unused-argument
    """No pytest-ansible under ansible-test units: its pytest_configure would link the collection into
    ./collections/ and replace the collection loader ansible-test set up. ansible-test passes no
    PYTEST_ADDOPTS and uses its own ini file, so the plugin is blocked here, when this conftest is
    registered (before any pytest_configure runs)."""
    pluginmanager.set_blocked("pytest-ansible")
