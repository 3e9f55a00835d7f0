"""Unit tests for the feature frame: contract typing and the deterministic, stratified train/test split."""

from __future__ import annotations

import math

import pandas as pd
import pandera.pandas as pa
import pytest
from botany.iris import demo_data as iris_data
from botany.iris.contract import IrisFeatures, IrisRecord
from growth.conversion import demo_data as conversion_data
from growth.conversion.contract import ConversionFeatures, ConversionRecord
from pandera.typing import Series

from ml_platform.errors import ContractViolation
from ml_platform.rules.features import (
    SPLIT_COLUMN,
    assign_split,
    build_feature_frame,
    split_digest,
    typed_frame,
)
from ml_platform.rules.spec import ModelSpec
from ml_platform_tests.models import CONVERSION, IRIS


def with_split(spec: ModelSpec, **split) -> ModelSpec:
    return ModelSpec.model_validate(spec.model_dump() | {"split": spec.split.model_dump() | split})


@pytest.fixture(scope="module")
def conversion_raw() -> pd.DataFrame:
    return conversion_data.generate(rows=2000, seed=3)


@pytest.fixture
def iris_raw() -> pd.DataFrame:
    return iris_data.generate()


# --- typed_frame -------------------------------------------------------------------------------------------


def test_typed_frame_coerces_csv_like_strings(iris_raw):
    as_text = iris_raw.astype(str)
    typed = typed_frame(as_text, IRIS, IrisRecord)
    assert typed["sepal_length"].dtype == "float64"
    assert typed["sepal_length"].tolist() == iris_raw["sepal_length"].tolist()
    assert typed["species"].tolist() == iris_raw["species"].tolist()


def test_typed_frame_coerces_conversion_numbers_and_timestamps_from_text(conversion_raw):
    head = conversion_raw.head(50)
    as_text = head.astype({c: str for c in ["price", "discount", "pages_viewed", "time_on_site_s", "converted"]})
    as_text["event_time"] = head["event_time"].map(lambda t: t.isoformat())
    typed = typed_frame(as_text, CONVERSION, ConversionRecord)
    assert typed["pages_viewed"].dtype == "int64"
    assert typed["converted"].tolist() == head["converted"].tolist()
    assert typed["price"].tolist() == pytest.approx(head["price"].tolist())
    assert (typed["event_time"] == head["event_time"]).all()


def test_the_snapshot_gates_type_the_snapshot_exactly_as_typed_frame_does(conversion_raw):
    from datetime import UTC, datetime

    from ml_platform.rules.contracts import typed_snapshot_gates

    as_csv = conversion_raw.assign(event_time=conversion_raw["event_time"].map(lambda t: t.isoformat()))
    results, typed = typed_snapshot_gates(as_csv, CONVERSION, ConversionRecord, "s", now=datetime.now(UTC))

    assert results[0].gate == "schema_holds" and results[0].passed
    pd.testing.assert_frame_equal(typed, typed_frame(as_csv, CONVERSION, ConversionRecord), check_exact=True)
    assert as_csv["event_time"].dtype == "str"  # the gates' typing never changes the frame they judged


def test_the_snapshot_gates_give_no_typed_frame_when_the_schema_fails(iris_raw):
    from datetime import UTC, datetime

    from ml_platform.rules.contracts import typed_snapshot_gates

    broken = iris_raw.assign(sepal_length="not a number")
    results, typed = typed_snapshot_gates(broken, IRIS, IrisRecord, "s", now=datetime.now(UTC))

    assert not results[0].passed
    assert typed is None


def test_typed_frame_names_the_model_and_the_contract_on_bad_data(iris_raw):
    bad = iris_raw.copy()
    bad.loc[0, "sepal_length"] = -1.0
    bad.loc[1, "petal_width"] = 99.0
    with pytest.raises(
        ContractViolation, match=r"validated_features 'iris': the snapshot breaks IrisRecord in 2 place"
    ):
        typed_frame(bad, IRIS, IrisRecord)


def test_typed_frame_reports_a_value_that_cannot_be_coerced(iris_raw):
    bad = iris_raw.astype(str)
    bad.loc[4, "sepal_width"] = "wide"
    with pytest.raises(ContractViolation, match=r"(?s)'iris'.*IrisRecord.*sepal_width.*wide"):
        typed_frame(bad, IRIS, IrisRecord)


def test_typed_frame_refuses_an_unknown_column(iris_raw):
    with pytest.raises(ContractViolation, match=r"breaks IrisRecord.*extra"):
        typed_frame(iris_raw.assign(extra=1), IRIS, IrisRecord)


def test_typed_frame_is_a_value_error_for_callers_that_catch_those(iris_raw):
    with pytest.raises(ValueError, match="breaks IrisRecord"):
        typed_frame(iris_raw.drop(columns=["species"]), IRIS, IrisRecord)


def test_typed_frame_does_not_turn_no_into_true(conversion_raw):
    frame = conversion_raw.head(20).copy()
    frame["returning_customer"] = ["no", "yes"] * 10
    try:
        typed = typed_frame(frame, CONVERSION, ConversionRecord)
    except ContractViolation:
        return
    assert typed["returning_customer"].tolist() == [False, True] * 10


# --- the split ---------------------------------------------------------------------------------------------


def test_split_is_deterministic(conversion_raw):
    first = build_feature_frame(conversion_raw, CONVERSION, ConversionRecord)
    second = build_feature_frame(conversion_raw.copy(), CONVERSION, ConversionRecord)
    pd.testing.assert_series_equal(first[SPLIT_COLUMN], second[SPLIT_COLUMN])
    assert split_digest(first[SPLIT_COLUMN]) == split_digest(second[SPLIT_COLUMN])


def test_split_is_stratified_by_label(conversion_raw):
    features = build_feature_frame(conversion_raw, CONVERSION, ConversionRecord)
    test = features[features[SPLIT_COLUMN] == "test"]
    overall = features["converted"].mean()
    assert 0.2 < overall < 0.8
    assert test["converted"].mean() == pytest.approx(overall, abs=0.005)


def test_split_keeps_iris_classes_exactly_balanced(iris_raw):
    features = build_feature_frame(iris_raw, IRIS, IrisRecord)
    test = features[features[SPLIT_COLUMN] == "test"]
    assert test["species"].value_counts().to_dict() == {"setosa": 15, "versicolor": 15, "virginica": 15}


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_respects_test_fraction(conversion_raw, fraction):
    spec = with_split(CONVERSION, test_fraction=fraction)
    split = assign_split(conversion_raw, spec)
    assert (split == "test").sum() == math.ceil(fraction * len(conversion_raw))
    assert set(split) == {"train", "test"}


def test_split_differs_with_a_different_seed(conversion_raw):
    split = assign_split(conversion_raw, CONVERSION)
    reseeded = assign_split(conversion_raw, with_split(CONVERSION, seed=CONVERSION.split.seed + 1))
    assert (split == "test").sum() == (reseeded == "test").sum()
    assert not split.equals(reseeded)
    assert split_digest(split) != split_digest(reseeded)


def test_unstratified_split_still_respects_test_fraction(conversion_raw):
    split = assign_split(conversion_raw, with_split(CONVERSION, stratified=False))
    assert (split == "test").sum() == math.ceil(0.25 * len(conversion_raw))
    assert split_digest(split) != split_digest(assign_split(conversion_raw, CONVERSION))


def test_split_keeps_the_frame_index(conversion_raw):
    shifted = conversion_raw.head(200).set_axis(range(1000, 1200))
    split = assign_split(shifted, CONVERSION)
    assert split.index.equals(shifted.index)
    assert split.name == SPLIT_COLUMN


def test_split_that_cannot_be_stratified_names_the_model(iris_raw):
    lonely = pd.concat([iris_raw, iris_raw.tail(1).assign(species="unknown-species")], ignore_index=True)
    with pytest.raises(
        ContractViolation,
        match=r"validated_features 'iris': cannot split 151 rows .* stratified by 'species'",
    ):
        assign_split(lonely, IRIS)


def test_split_digest_depends_only_on_which_positions_are_test():
    split = pd.Series(["train", "test", "train", "test"])
    assert split_digest(split) == split_digest(split.set_axis([9, 8, 7, 6]))
    assert split_digest(split) != split_digest(pd.Series(["test", "train", "train", "test"]))


# --- build_feature_frame -----------------------------------------------------------------------------------


def test_feature_frame_satisfies_the_feature_contract(conversion_raw, iris_raw):
    conversion = build_feature_frame(conversion_raw, CONVERSION, ConversionRecord)
    iris = build_feature_frame(iris_raw, IRIS, IrisRecord)
    ConversionFeatures.validate(conversion)
    IrisFeatures.validate(iris)
    assert list(conversion.columns) == [*conversion_raw.columns, SPLIT_COLUMN]
    assert conversion.index.equals(pd.RangeIndex(len(conversion_raw)))


def test_feature_frame_does_not_mutate_its_input(iris_raw):
    as_text = iris_raw.astype(str).set_axis(range(500, 650))
    before = as_text.copy()
    features = build_feature_frame(as_text, IRIS, IrisRecord)
    pd.testing.assert_frame_equal(as_text, before)
    assert SPLIT_COLUMN not in as_text.columns
    assert features["sepal_length"].dtype == "float64"


class _OpenContract(pa.DataFrameModel):
    """A non-strict contract, so that a ``split`` column reaches build_feature_frame's own check."""

    species: Series[str]

    class Config:
        strict = False
        coerce = True


def test_feature_frame_refuses_data_that_already_has_a_split_column(iris_raw):
    with pytest.raises(ContractViolation, match=r"validated_features 'iris': the data already has a column 'split'"):
        build_feature_frame(iris_raw.assign(split="train"), IRIS, _OpenContract)


def test_feature_frame_refuses_a_split_column_under_the_strict_raw_contract(iris_raw):
    with pytest.raises(ContractViolation, match=r"'iris'.*IrisRecord.*split"):
        build_feature_frame(iris_raw.assign(split="train"), IRIS, IrisRecord)
