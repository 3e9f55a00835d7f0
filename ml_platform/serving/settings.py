"""What the server reads from a model's spec (``ModelSpec.release``) and from its command line (pure).

``ModelSpec.release`` is the release policy shared with the release gate (see the release contract in
the docs). A spec from before that field existed is served with the same defaults
(``DEFAULT_RELEASE``), so the server needs nothing new from a team.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ml_platform.keys import REGISTRY_TAG

CANARY_PERCENT_TAG = f"{REGISTRY_TAG}canary_percent"  # on the canary version, written by `ml-platform release start`
RELEASE_MODE_TAG = f"{REGISTRY_TAG}release_mode"  # "canary" or "shadow"
RELEASE_ID_TAG = f"{REGISTRY_TAG}release_id"
MAX_BODY_BYTES = 1 << 20
MAX_ROWS = 1_000


@dataclass(frozen=True)
class ServingPolicy:
    """The part of a model's release policy the server applies."""

    deployed_alias: str = "production"
    canary_percent: float = 10.0  # when the canary version carries no canary_percent tag
    routing_header: str = "X-Routing-Key"
    routing_column: str | None = None
    shadow_sample: float = 1.0
    poll_seconds: float = 2.0
    batch_max_rows: int = 64
    batch_wait_ms: float = 2.0


DEFAULT_RELEASE = ServingPolicy()


def serving_policy(spec, **overrides: Any) -> ServingPolicy:
    """The spec's release policy as the server applies it, with command-line or test overrides."""
    release = getattr(spec, "release", None)
    known = {f.name for f in fields(ServingPolicy)}
    base = ServingPolicy(**{name: getattr(release, name) for name in known if hasattr(release, name)})
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown serving setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return replace(base, **{name: value for name, value in overrides.items() if value is not None})


@dataclass(frozen=True)
class ServerLimits:
    """Limits of one server process, from the command line: what a single request may hold."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_rows: int = MAX_ROWS
    log_flush_rows: int = 5_000
    log_flush_seconds: float = 5.0
