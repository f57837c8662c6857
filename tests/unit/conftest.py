"""Unit-test settings: Hypothesis keeps its example database under the collection's ignored .cache/
(in ansible-test's copy of the collection), never in a .hypothesis/ at the root that a build would ship."""
from __future__ import annotations

from pathlib import Path

from hypothesis import configuration, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_HOME = Path(__file__).resolve().parents[2] / ".cache" / "hypothesis"
configuration.set_hypothesis_home_dir(_HOME)
settings.register_profile("circleci.server", database=DirectoryBasedExampleDatabase(str(_HOME / "examples")))
settings.load_profile("circleci.server")
