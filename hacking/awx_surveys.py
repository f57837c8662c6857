"""Write the AWX / Automation Controller survey of each playbook from roles/inputs/meta/argument_specs.yml.

    python hacking/awx_surveys.py          # writes playbooks/awx/<entry point>.survey.json
    python hacking/awx_surveys.py --check  # exits 1 when a committed survey differs from its spec

One entry point of the `inputs` role per playbook; one survey question per option: secrets (no_log) become
password fields, choices and booleans multiple choice, integers integer fields. AWX sends every answer as
text or number in extra vars; the playbook validates them with the same spec when it starts. Dictionaries and
lists are not questions (a survey has no such type): they go in the job template's extra variables or the
inventory, and the same spec validates them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "roles", "inputs", "meta", "argument_specs.yml")
OUT_DIR = os.path.join(ROOT, "playbooks", "awx")
PLAYBOOK_OF = {"upgrade_4_3": "upgrade-4.3.yml", "migrate_3_to_4": "migrate-3-to-4.yml",
               "install": "install.yml", "upgrade": "upgrade.yml", "upgrade_2_19": "upgrade-2.19.yml",
               "migrate_2_19_to_3": "migrate-2.19-to-3.yml"}


MARKUP = re.compile(r"\b[CVEIOR]\(([^()]*)\)")


def _text(value) -> str:
    """Plain text of an argument spec description (a survey shows no Ansible markup)."""
    return MARKUP.sub(r"\1", " ".join(value) if isinstance(value, list) else str(value))


NOT_QUESTIONS = ("dict", "list")


def question(variable: str, option: dict) -> dict:
    kind = option.get("type", "str")
    default = option.get("default")
    entry = {
        "question_name": variable,
        "question_description": _text(option.get("description", "")),
        "variable": variable,
        "required": bool(option.get("required", False)),
    }
    if option.get("no_log"):
        entry.update(type="password", default="", min=0, max=4096)
    elif kind == "bool":
        entry.update(type="multiplechoice", choices=["true", "false"], default="true" if default else "false")
    elif option.get("choices"):
        entry.update(type="multiplechoice", choices=[str(c) for c in option["choices"]],
                     default="" if default is None else str(default))
    elif kind == "int":
        entry.update(type="integer", default=default if default is not None else "", min=0, max=1000000)
    elif kind == "float":
        entry.update(type="float", default=default if default is not None else "", min=0, max=1000000)
    else:
        entry.update(type="text", default="" if default is None else str(default), min=0, max=1024)
    return entry


def surveys() -> dict:
    with open(SPEC) as handle:
        specs = yaml.safe_load(handle)["argument_specs"]
    result = {}
    for entry_point, spec in specs.items():
        playbook = PLAYBOOK_OF.get(entry_point, entry_point + ".yml")
        result[entry_point] = {
            "name": "circleci.server %s" % playbook,
            "description": _text(spec.get("short_description", "")),
            "spec": [question(name, option) for name, option in spec.get("options", {}).items()
                     if option.get("type", "str") not in NOT_QUESTIONS],
        }
    return result


def render(survey: dict) -> str:
    return json.dumps(survey, indent=2, sort_keys=True) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    os.makedirs(OUT_DIR, exist_ok=True)
    for entry_point, survey in surveys().items():
        path = os.path.join(OUT_DIR, entry_point + ".survey.json")
        text = render(survey)
        current = open(path).read() if os.path.exists(path) else None
        if current != text:
            stale.append(path)
            if not args.check:
                with open(path, "w") as handle:
                    handle.write(text)
    if args.check and stale:
        print("out of date (run python hacking/awx_surveys.py): %s" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
