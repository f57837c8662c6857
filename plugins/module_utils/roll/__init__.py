# -*- coding: utf-8 -*-
# Copyright: contributors to the circleci.server collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rolling replacement of Nomad clients in a cloud instance group: planner, executor, providers."""

from __future__ import annotations
