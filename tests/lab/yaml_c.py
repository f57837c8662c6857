"""PyYAML's safe subset through libyaml (the C loader and dumper) where PyYAML was built with it.

The lab reads and writes YAML on every bring-up (the stand-in charts' values overlays, scenarios, inventories,
values files): the pure-Python ``yaml.safe_load`` / ``yaml.safe_dump`` were half of a lab's start-up CPU. The C
classes accept and produce the same safe subset; without libyaml this falls back to the pure-Python classes.
"""
from __future__ import annotations

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def safe_load(stream):
    return yaml.load(stream, Loader=SafeLoader)  # nosec: the safe loader's C build


def safe_dump(data, stream=None, **kwargs):
    return yaml.dump(data, stream, Dumper=SafeDumper, **kwargs)
