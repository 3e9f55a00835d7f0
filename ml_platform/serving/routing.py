"""Which cohort a request belongs to (pure): sticky by a hash of its routing key.

The routing key (a request header, or a column of the request the spec names) is hashed with SHA-256
and reduced modulo 10,000: the same key always lands in the same bucket, so one user stays in one
cohort for the whole release, on every replica and across restarts, and a canary share is honoured to
0.01 %. Shadow sampling hashes the key with a different salt so that the shadow's sample is not the
canary's share.
"""

from __future__ import annotations

import hashlib

BUCKETS = 10_000
SHADOW_SALT = "shadow:"


def routing_bucket(key: str) -> int:
    """The key's bucket in ``[0, BUCKETS)``."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % BUCKETS


def goes_to_canary(key: str, canary_percent: float) -> bool:
    """Whether the key's traffic belongs to the canary cohort at ``canary_percent`` (0–100)."""
    return routing_bucket(key) < round(max(0.0, min(100.0, canary_percent)) * BUCKETS / 100)


def shadow_sampled(key: str, share: float) -> bool:
    """Whether the shadow also scores the key's request, at ``share`` (0–1) of keys."""
    return routing_bucket(SHADOW_SALT + key) < round(max(0.0, min(1.0, share)) * BUCKETS)
