"""The server's ``predict`` gives the pipeline's own answers: directly built matrix or not, with or without
``predict_proba``, and falls back to the pipeline for anything the direct path does not reproduce."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from growth.conversion.demo_data import generate
from growth.conversion.pipeline import CATEGORICAL, NUMERIC, build_pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_platform.serving.payload import parse_payload
from ml_platform.serving.predict import CHECKED_BATCHES, Preprocessing, Scorer
from ml_platform.serving.validation import ScoringContract
from ml_platform_tests.models import CONVERSION
from ml_platform_tests.serving.conftest import FAST, session_rows

FEATURES = list(CONVERSION.features)


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return generate(3_000, seed=7)


@pytest.fixture(scope="module")
def classifier(training):
    return build_pipeline(FAST).fit(training[FEATURES], training["converted"])


@pytest.fixture(scope="module")
def regressor(training):
    """The same preprocessing before an estimator without ``predict_proba``."""
    prepare = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
         ("numbers", "passthrough", NUMERIC)],
        verbose_feature_names_out=False,
    )  # fmt: skip
    pipeline = Pipeline([("prepare", prepare), ("boosting", HistGradientBoostingRegressor(max_iter=30))])
    return pipeline.fit(training[FEATURES], training["time_on_site_s"] * 2 + training["price"])


CONTRACT = ScoringContract(CONVERSION)


def _columns(count: int, seed: int) -> dict:
    contract = CONTRACT
    body = json.dumps({"dataframe_records": session_rows(count, seed=seed)}).encode()
    validated = contract.validate_many([parse_payload(body, contract.columns, contract.label, 10_000)])
    return validated.columns


def _warmed(pipeline) -> Scorer:
    scorer = Scorer(pipeline, FEATURES, "conversion", "1")
    for seed in range(CHECKED_BATCHES):
        scorer(_columns(3, seed=100 + seed))
    return scorer


def test_the_matrix_is_the_one_the_pipeline_builds_unknown_categories_included(classifier):
    frame = pd.DataFrame(_columns(200, seed=5))[FEATURES]
    frame.loc[0, "region"], frame.loc[1, "device"] = "mars", "toaster"  # unknown: all zeros in their block
    built = Preprocessing.of(classifier).matrix({name: frame[name].array for name in FEATURES})
    expected = np.asarray(classifier[:-1].transform(frame), dtype=np.float64)
    assert built is not None and built.dtype == np.float64
    np.testing.assert_array_equal(built, expected)


def test_a_classifier_answers_exactly_as_predict_and_predict_proba(classifier):
    scorer = _warmed(classifier)
    assert scorer.direct and scorer.agreed == CHECKED_BATCHES
    columns = _columns(500, seed=9)
    labels, confidence = scorer(columns)
    frame = pd.DataFrame(columns)[FEATURES]
    np.testing.assert_array_equal(labels, classifier.predict(frame))
    np.testing.assert_array_equal(confidence, classifier.predict_proba(frame).max(axis=1))


def test_a_model_without_predict_proba_answers_exactly_as_predict(regressor):
    scorer = _warmed(regressor)
    assert scorer.direct
    columns = _columns(500, seed=9)
    values, confidence = scorer(columns)
    assert confidence is None
    np.testing.assert_array_equal(values, regressor.predict(pd.DataFrame(columns)[FEATURES]))


def test_a_preprocessing_it_does_not_reproduce_is_left_to_the_pipeline(training):
    prepare = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
         ("numbers", StandardScaler(), NUMERIC)],
    )  # fmt: skip
    pipeline = Pipeline([("prepare", prepare), ("boosting", HistGradientBoostingRegressor(max_iter=10))])
    pipeline.fit(training[FEATURES], training["price"])
    assert Preprocessing.of(pipeline) is None
    scorer = _warmed(pipeline)
    columns = _columns(50, seed=9)
    assert not scorer.direct
    np.testing.assert_array_equal(scorer(columns)[0], pipeline.predict(pd.DataFrame(columns)[FEATURES]))


def test_a_pipeline_fitted_on_columns_the_spec_does_not_name_is_left_to_the_pipeline(classifier):
    assert Scorer(classifier, FEATURES, "conversion", "1").preprocessing is not None
    assert Scorer(classifier, [name for name in FEATURES if name != "price"], "conversion", "1").preprocessing is None


def test_a_value_the_direct_path_does_not_type_goes_to_the_pipeline(classifier):
    columns, preprocessing = _columns(4, seed=9), Preprocessing.of(classifier)
    assert preprocessing.matrix(columns | {"region": np.array([1, 2, 3, 4])}) is None
    assert preprocessing.matrix(columns | {"price": np.array(["1", "2", "3", "4"], dtype=object)}) is None


def test_a_direct_answer_that_differs_turns_the_direct_path_off_and_the_pipeline_answers(classifier, training):
    scorer = Scorer(classifier, FEATURES, "conversion", "1")
    other = build_pipeline(FAST).fit(training[FEATURES], 1 - training["converted"])
    scorer.final = other.steps[-1][1]  # a direct path that no longer matches its pipeline
    columns = _columns(200, seed=9)
    labels, _ = scorer(columns)
    np.testing.assert_array_equal(labels, classifier.predict(pd.DataFrame(columns)[FEATURES]))
    assert scorer.preprocessing is None and not scorer.direct
