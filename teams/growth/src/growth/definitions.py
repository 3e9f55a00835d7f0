"""The growth team's code location: every declaration under ``defs/`` (what ``dg`` and ``workspace.yaml`` load)."""

from pathlib import Path

import dagster as dg

import ml_platform


@dg.definitions
def defs() -> dg.Definitions:
    return ml_platform.one_sensor_per_kind(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
