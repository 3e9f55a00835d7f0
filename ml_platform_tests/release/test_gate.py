"""The online release gate as a pure function: each rule passing and failing, waiting, and the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from ml_platform.rules.figures import markdown_image, png_bytes
from ml_platform.rules.performance import OUTCOME, inference_log_frame
from ml_platform.rules.release import (
    CANARY_PREDICTION,
    COHORT,
    LATENCY_MS,
    PRODUCTION_PREDICTION,
    REQUEST_ID,
    STATUS,
    judge_release,
    release_figure,
    window_rows,
)
from ml_platform.rules.spec import Release
from ml_platform_tests.models import CONVERSION

START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
RELEASE = Release(min_requests=200, min_feedback_rows=200, window=timedelta(minutes=10))
CLASSES = (0, 1)


def online_rows(
    n: int,
    *,
    cohort: str,
    version: str,
    positive: float = 0.3,
    latency: float = 10.0,
    errors: int = 0,
    seed: int = 0,
    at: datetime = START + timedelta(minutes=1),
    mode_cohort: str | None = None,
) -> pd.DataFrame:
    """Rows as the server logs them: ``inference_log_frame`` plus the contract's online columns."""
    rng = np.random.default_rng(seed)
    batch = pd.DataFrame({"session_id": [f"{cohort}-{seed}-{i}" for i in range(n)], "price": rng.uniform(1, 99, n)})
    predictions = (rng.uniform(size=n) < positive).astype(int)
    log = inference_log_frame(
        batch,
        ["session_id", "price"],
        predictions,
        rng.uniform(0.5, 1, n),
        version=version,
        batch_file="online",
        batch_sha256="",
        scored_at=pd.Timestamp(at),
    )
    log[COHORT] = mode_cohort or cohort
    log[REQUEST_ID] = [f"r{seed}-{i}" for i in range(n)]
    log[LATENCY_MS] = rng.gamma(4.0, latency / 4.0, n)
    log[STATUS] = ["error" if i < errors else "ok" for i in range(n)]
    log["prediction"] = log["prediction"].astype("Int64").mask(log[STATUS] == "error")
    return log


def judge(production, canary, *, now=START + timedelta(minutes=11), labelled=None, release=RELEASE):
    return judge_release(
        production,
        canary,
        release=release,
        classes=CLASSES,
        metric="f1_macro",
        production="1",
        canary="2",
        started_at=START,
        now=now,
        labelled=labelled,
    )


def failed(judgment) -> list[str]:
    return [rule.rule for rule in judgment.gate.violations]


def test_a_canary_like_production_is_promoted_once_the_window_has_elapsed_and_waits_before():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(300, cohort="canary", version="2", seed=2)
    judgment = judge(production, canary)
    assert judgment.verdict == "promote" and failed(judgment) == []
    assert {r.rule for r in judgment.gate.rules} == {
        "canary error rate",
        "p99 latency canary / production",
        "prediction shift (Jensen-Shannon distance)",
    }
    assert "live f1_macro: 0 labelled rows" in judgment.reason  # promoted on the online rules, and says so
    early = judge(production, canary, now=START + timedelta(minutes=5))
    assert early.verdict == "wait" and "baking until 2026-11-30T10:10:00+00:00" in early.reason
    assert "| canary error rate | 0.0000 | <= 0.01 | yes |" in judgment.table()


def test_a_canary_that_fails_requests_is_rolled_back_within_the_window():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(300, cohort="canary", version="2", seed=2, errors=30)
    judgment = judge(production, canary, now=START + timedelta(minutes=3))
    assert judgment.verdict == "rollback" and failed(judgment) == ["canary error rate"]
    assert "canary error rate observed 0.1000, required <= 0.01" in judgment.reason
    assert judgment.canary.errors == 30 and judgment.production.errors == 0


def test_client_errors_are_shown_apart_and_only_server_errors_roll_a_canary_back():
    production = online_rows(400, cohort="production", version="1", seed=1)
    refused = online_rows(300, cohort="canary", version="2", seed=2, errors=90).assign(http_status=422)
    judgment = judge(production, refused, now=START + timedelta(minutes=3))
    assert judgment.verdict == "wait" and failed(judgment) == []
    assert (judgment.canary.errors, judgment.canary.client_errors, judgment.canary.error_rate) == (0, 90, 0.0)
    assert judgment.scores()["canary"]["client_errors"] == 90
    assert "| canary | v2 | 300 | 0 | 90 |" in judgment.table()

    failing = online_rows(300, cohort="canary", version="2", seed=2, errors=90).assign(http_status=503)
    judgment = judge(production, failing, now=START + timedelta(minutes=3))
    assert judgment.verdict == "rollback" and failed(judgment) == ["canary error rate"]
    assert (judgment.canary.errors, judgment.canary.client_errors) == (90, 0)


def test_a_slow_canary_is_rolled_back_on_its_p99_ratio():
    production = online_rows(400, cohort="production", version="1", seed=1, latency=10.0)
    canary = online_rows(300, cohort="canary", version="2", seed=2, latency=30.0)
    judgment = judge(production, canary, now=START + timedelta(minutes=3))
    assert judgment.verdict == "rollback" and failed(judgment) == ["p99 latency canary / production"]
    (rule,) = judgment.gate.violations
    assert rule.observed > 2.0 and rule.required == "<= 1.5"


def test_a_canary_whose_predictions_shift_is_rolled_back_on_the_jensen_shannon_distance():
    production = online_rows(400, cohort="production", version="1", seed=1, positive=0.3)
    canary = online_rows(300, cohort="canary", version="2", seed=2, positive=0.9)
    judgment = judge(production, canary)
    assert judgment.verdict == "rollback" and failed(judgment) == ["prediction shift (Jensen-Shannon distance)"]
    assert judgment.canary.prediction_shares["1"] > 0.8 and judgment.production.prediction_shares["1"] < 0.4


def labelled_rows(n: int, canary_accuracy: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    canary = np.where(rng.uniform(size=n) < canary_accuracy, truth, 1 - truth)
    production = np.where(rng.uniform(size=n) < 0.9, truth, 1 - truth)
    return pd.DataFrame({OUTCOME: truth, CANARY_PREDICTION: canary, PRODUCTION_PREDICTION: production})


def test_the_live_metric_rolls_back_a_canary_measurably_worse_on_the_same_labelled_rows():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(300, cohort="canary", version="2", seed=2)
    judgment = judge(production, canary, labelled=labelled_rows(600, canary_accuracy=0.6))
    assert judgment.verdict == "rollback" and failed(judgment) == ["live f1_macro drop (production - canary)"]
    assert judgment.comparison.better and judgment.comparison.low > 0
    (rule,) = judgment.gate.violations
    assert rule.observed > 0.25 and "on the same 600 labelled rows" in rule.note
    good = judge(production, canary, labelled=labelled_rows(600, canary_accuracy=0.9))
    assert good.verdict == "promote" and "live f1_macro drop (production - canary)" in [r.rule for r in good.gate.rules]


def test_too_few_labels_leave_the_live_metric_unjudged():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(300, cohort="canary", version="2", seed=2)
    judgment = judge(production, canary, labelled=labelled_rows(50, canary_accuracy=0.1))
    assert judgment.verdict == "promote" and judgment.comparison is None
    assert judgment.pending == ("live f1_macro: 50 labelled rows in the window, 200 needed",)


def test_too_little_traffic_waits_and_a_window_that_ends_so_rolls_back():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(40, cohort="canary", version="2", seed=2)
    waiting = judge(production, canary, now=START + timedelta(minutes=4))
    assert waiting.verdict == "wait" and "40 canary requests, 200 needed" in waiting.reason
    ended = judge(production, canary)
    assert ended.verdict == "rollback" and failed(ended) == []
    assert "ended with 40 canary and 400 production requests (200 of each needed)" in ended.reason


def test_window_rows_keeps_the_window_the_two_versions_and_the_mode_s_cohort():
    log = pd.concat(
        [
            online_rows(5, cohort="production", version="1", seed=1),
            online_rows(4, cohort="canary", version="2", seed=2),
            online_rows(3, cohort="canary", version="2", seed=3, mode_cohort="shadow"),
            online_rows(7, cohort="production", version="1", seed=4, at=START - timedelta(minutes=1)),
            online_rows(6, cohort="production", version="1", seed=5, at=START + timedelta(minutes=30)),
            online_rows(2, cohort="production", version="0", seed=6),
        ],
        ignore_index=True,
    )
    production, canary = window_rows(
        log, production="1", canary="2", mode="canary", started_at=START, window=RELEASE.window
    )
    assert (len(production), len(canary)) == (5, 4)
    _, shadow = window_rows(log, production="1", canary="2", mode="shadow", started_at=START, window=RELEASE.window)
    assert len(shadow) == 3
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['cohort'"):
        window_rows(
            log.drop(columns=COHORT), production="1", canary="2", mode="canary", started_at=START, window=RELEASE.window
        )


def test_the_figure_shows_both_cohorts_as_a_png():
    production = online_rows(400, cohort="production", version="1", seed=1)
    canary = online_rows(300, cohort="canary", version="2", seed=2, errors=30)
    image = markdown_image(png_bytes(release_figure(judge(production, canary), "conversion")), "cohorts")
    assert image.startswith("![cohorts](data:image/png;base64,")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("canary_percent", 0, "greater than 0"),
        ("canary_percent", 100.5, "less than or equal to 100"),
        ("shadow_sample", 0, "greater than 0"),
        ("shadow_sample", 1.5, "less than or equal to 1"),
        ("window", timedelta(0), "a baking window must be longer than zero"),
    ],
)
def test_release_settings_outside_their_range_are_refused(field, value, message):
    with pytest.raises(ValidationError, match=message):
        Release(**{field: value})


def test_the_routing_column_must_be_a_declared_column():
    spec = CONVERSION.model_copy(update={"release": Release(routing_column="session_id")})
    assert spec.model_validate(spec.model_dump()).release.routing_column == "session_id"
    for column in ("customer", "converted"):
        with pytest.raises(ValidationError, match=f"release.routing_column '{column}' is not a column"):
            CONVERSION.model_validate({**CONVERSION.model_dump(), "release": {"routing_column": column}})
