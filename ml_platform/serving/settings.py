"""What the server reads from a model's spec (``ModelSpec.release``) and from its command line (pure).

The release policy (``rules.spec.Release``) is shared with the release gate; the server applies its
``deployed_alias``, routing, shadow sample, polling and batching fields, which the command line (and
the tests) may override for one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml_platform.keys import CANARY_PERCENT_TAG, RELEASE_MODE_TAG
from ml_platform.rules.spec import ModelSpec, Release

__all__ = ["CANARY_PERCENT_TAG", "RELEASE_MODE_TAG", "ServerLimits", "serving_policy"]

MAX_BODY_BYTES = 1 << 20
MAX_ROWS = 1_000


def serving_policy(spec: ModelSpec, **overrides: Any) -> Release:
    """The spec's release policy as the server applies it, with command-line or test overrides (``None``: keep)."""
    unknown = set(overrides) - set(Release.model_fields)
    if unknown:
        raise ValueError(f"unknown serving setting(s) {sorted(unknown)}; known: {sorted(Release.model_fields)}")
    given = {name: value for name, value in overrides.items() if value is not None}
    return Release.model_validate(spec.release.model_dump() | given) if given else spec.release


@dataclass(frozen=True)
class ServerLimits:
    """Limits of one server process, from the command line: what a single request may hold."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_rows: int = MAX_ROWS
    log_flush_rows: int = 5_000
    log_flush_seconds: float = 5.0
