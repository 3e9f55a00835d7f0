"""A seeded generator of realistic conversion sessions, of any size.

Conversion depends non-trivially on the features and differs by region: engagement (pages, time on
site) raises it with diminishing returns, price lowers it, a discount helps more in some regions
than others, mobile sessions convert less except in apac, returning customers convert more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from growth.conversion.spec import REGIONS

REGION_WEIGHTS = (0.30, 0.20, 0.20, 0.15, 0.15)
REGION_BASE = {"us-east": 0.0, "us-west": 0.25, "eu-west": -0.3, "eu-central": -0.5, "apac": 0.35}
REGION_DISCOUNT_EFFECT = {"us-east": 2.0, "us-west": 1.5, "eu-west": 3.0, "eu-central": 3.5, "apac": 1.0}
DEVICES = ("desktop", "mobile", "tablet")
SHARPNESS = 2.5  # how far from a coin flip a session's outcome is, given its features
# A marketing campaign in apac: its share of traffic jumps, prices move up, discounts are everywhere.
CAMPAIGN_REGION_WEIGHTS = (0.15, 0.10, 0.10, 0.10, 0.55)
# A changed market, for shifted outcomes: a competitor's prices make customers far more price-sensitive,
# a discount reads as a warning sign, returning customers shop elsewhere and mobile sessions convert more.
SHIFTED_PRICE_SENSITIVITY = 5.0


def generate(
    rows: int = 20_000,
    seed: int = 0,
    end: datetime | None = None,
    days: float = 14.0,
    regions: tuple[str, ...] = REGIONS,
    campaign: bool = False,
    shifted_outcomes: bool = False,
) -> pd.DataFrame:
    """``rows`` sessions with event times spread over the ``days`` before ``end`` (default: now).

    ``campaign=True`` shifts the feature distributions as a marketing campaign in a new region would:
    apac's share of traffic jumps, prices rise and most sessions carry a larger discount.
    ``shifted_outcomes=True`` keeps the sessions (the same seed gives the same keys and features) but
    draws their outcomes from a changed market (concept drift): what a model learned no longer holds,
    and nothing in the features shows it -- only labelled outcomes do.
    """
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).replace(microsecond=0)
    region_weights = CAMPAIGN_REGION_WEIGHTS if campaign else REGION_WEIGHTS
    weights = np.array([region_weights[REGIONS.index(r)] for r in regions])
    region = rng.choice(np.array(regions), size=rows, p=weights / weights.sum())
    device = rng.choice(np.array(DEVICES), size=rows, p=[0.5, 0.4, 0.1])
    returning = rng.random(rows) < 0.35
    pages = 1 + rng.poisson(np.where(returning, 5.0, 3.0))
    time_on_site = np.round(rng.gamma(2.0, 25.0 + 12.0 * pages), 1)
    price = np.round(np.exp(rng.normal(4.5 if campaign else 4.0, 0.6, rows)), 2)
    discount = np.where(
        rng.random(rows) < (0.1 if campaign else 0.45),
        0.0,
        np.round(rng.uniform(0.2, 0.7, rows) if campaign else rng.uniform(0.05, 0.6, rows), 2),
    )
    seconds = rng.uniform(0, days * 86400, rows)
    event_time = pd.to_datetime(end - timedelta(days=days), utc=True) + pd.to_timedelta(seconds, unit="s")

    region_base = np.vectorize(REGION_BASE.get)(region)
    discount_effect = np.vectorize(REGION_DISCOUNT_EFFECT.get)(region)
    mobile_penalty = np.where((device == "mobile") & (region != "apac"), -0.7, 0.0)
    price_sensitivity, returning_effect = 1.6, 0.8
    if shifted_outcomes:
        price_sensitivity, returning_effect = SHIFTED_PRICE_SENSITIVITY, -0.8
        discount_effect, mobile_penalty = -discount_effect, np.where(device == "mobile", 0.7, 0.0)
    logit = (
        -3.9
        + region_base
        + 2.2 * np.log1p(pages)
        - 0.03 * pages**1.5
        + 0.6 * np.tanh(time_on_site / 300.0)
        - price_sensitivity * (np.log(price) - 4.0)
        + discount_effect * discount
        + mobile_penalty
        + returning_effect * returning
    )
    converted = (rng.random(rows) < 1.0 / (1.0 + np.exp(-SHARPNESS * (logit - 0.5)))).astype(int)
    frame = pd.DataFrame(
        {
            "session_id": [f"s-{seed}-{i:09d}" for i in range(rows)],
            "event_time": event_time,
            "region": region,
            "device": device,
            "price": price,
            "discount": discount,
            "pages_viewed": pages.astype(int),
            "time_on_site_s": time_on_site,
            "returning_customer": returning,
            "converted": converted,
        }
    )
    return frame.sort_values("event_time", ignore_index=True)
