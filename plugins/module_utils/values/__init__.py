# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CircleCI Server Helm values: secret masking, YAML round-trip and per-release migrations."""

from __future__ import annotations
