"""The conversion model on the platform: its Python ``ModelSpec`` and the one call that makes its definitions."""

import dagster as dg

import ml_platform
from growth.conversion.spec import SPEC


@dg.definitions
def defs() -> dg.Definitions:
    return ml_platform.model_definitions(SPEC)
