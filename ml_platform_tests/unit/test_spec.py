"""Unit tests for the model declaration: names, spec validators, derived values and references."""

from __future__ import annotations

import pandera.pandas as pa
import pytest
from pydantic import ValidationError
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ml_platform.rules.spec import ModelSpec, Segments, resolve_ref, validate_model_name
from ml_platform.rules.training import build_pipeline
from ml_platform_tests.models import CONVERSION, IRIS, SPECS

IRIS_CONTRACT = "botany.iris.contract:IrisRecord"
IRIS_PIPELINE = "botany.iris.pipeline:build_pipeline"


def spec_fields(**overrides) -> dict:
    """The smallest valid declaration, with overrides."""
    fields = {
        "name": "demo",
        "contract": IRIS_CONTRACT,
        "label": "species",
        "label_values": ("setosa", "versicolor"),
        "features": ("sepal_length", "sepal_width"),
        "pipeline": IRIS_PIPELINE,
        "policy": {"min_metrics": {"accuracy": 0.9}},
    }
    return fields | overrides


def variant(spec: ModelSpec, **overrides) -> ModelSpec:
    """A shipped spec with overrides, re-validated (``model_copy(update=...)`` would skip validation)."""
    return ModelSpec.model_validate(spec.model_dump() | overrides)


# --- model names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conversion", "iris", "a", "7", "churn-v2", "model_1", "a" * 63, "0-x_y"])
def test_validate_model_name_accepts_safe_names(name):
    assert validate_model_name(name) == name
    assert ModelSpec(**spec_fields(name=name)).name == name


UNSAFE_NAMES = [
    "../x",
    "a/b",
    "..",
    ".",
    "Conversion",
    "x y",
    "",
    "a" * 64,
    "-x",
    "_x",
    "%2e%2e",
    "a\x00b",
    "/etc/passwd",
    "/abs/model",
    "C:\\models\\x",
    "a\\b",
    "x\n",
    "name.v2",
    "café",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_validate_model_name_refuses_names_that_escape_or_break_keys(name):
    with pytest.raises(ValueError, match=r"model name .* is not allowed: use 1-63 lowercase letters"):
        validate_model_name(name)


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_model_spec_refuses_unsafe_names(name):
    with pytest.raises(ValidationError, match="is not allowed"):
        ModelSpec(**spec_fields(name=name))


@pytest.mark.parametrize("name", [None, 3, b"iris"])
def test_validate_model_name_refuses_non_strings(name):
    with pytest.raises(ValueError, match="is not allowed"):
        validate_model_name(name)


def test_refused_name_is_quoted_in_the_message():
    with pytest.raises(ValueError, match=r"model name '\.\./x' is not allowed"):
        validate_model_name("../x")


# --- spec validators ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [-0.01, 1.01, 2.0])
def test_segment_share_outside_unit_interval_is_refused(share):
    with pytest.raises(ValidationError, match=rf"segment 'eu': min_share {share} is not a fraction in \[0, 1\]"):
        Segments(column="region", min_share={"us": 0.1, "eu": share})


def test_segment_shares_summing_above_one_are_refused():
    with pytest.raises(ValidationError, match="min_share values add up to 1.1000, more than 1"):
        Segments(column="region", min_share={"us": 0.6, "eu": 0.5})


@pytest.mark.parametrize("shares", [{"us": 0.5, "eu": 0.5}, {"us": 0.0}, {"us": 1.0}, {"a": 0.25, "b": 0.25, "c": 0.5}])
def test_segment_shares_summing_to_at_most_one_are_accepted(shares):
    assert Segments(column="region", min_share=shares).min_share == shares


def test_segment_shares_summing_to_exactly_one_in_decimal_are_accepted():
    shares = {"a": 0.33, "b": 0.56, "c": 0.11}
    assert Segments(column="region", min_share=shares).min_share == shares


def test_segments_need_at_least_one_segment():
    with pytest.raises(ValidationError, match="min_share"):
        Segments(column="region", min_share={})


def test_label_listed_as_a_feature_is_refused():
    with pytest.raises(ValidationError, match="label 'species' is also listed as a feature"):
        ModelSpec(**spec_fields(features=("sepal_length", "species")))


def test_segment_floor_without_segments_is_refused():
    policy = {"min_metrics": {"accuracy": 0.9}, "min_segment_f1": 0.6}
    with pytest.raises(ValidationError, match="policy.min_segment_f1 is set but the spec declares no segments"):
        ModelSpec(**spec_fields(policy=policy))


def test_segment_floor_with_segments_is_accepted():
    policy = {"min_metrics": {"accuracy": 0.9}, "min_segment_f1": 0.6}
    segments = {"column": "region", "min_share": {"us": 0.1}}
    spec = ModelSpec(**spec_fields(policy=policy, segments=segments))
    assert spec.policy.min_segment_f1 == 0.6
    assert spec.segments.min_share == {"us": 0.1}


def test_performance_trigger_without_a_key_column_is_refused():
    monitoring = {"performance_tolerance": 0.05}
    with pytest.raises(
        ValidationError, match="model 'demo': monitoring.performance_tolerance is set but the spec has no key_column"
    ):
        ModelSpec(**spec_fields(monitoring=monitoring))
    with pytest.raises(ValidationError, match="has no key_column"):
        variant(CONVERSION, key_column=None)


def test_performance_trigger_with_a_key_column_is_accepted():
    spec = ModelSpec(**spec_fields(monitoring={"performance_tolerance": 0.05}, key_column="sample_id"))
    assert spec.monitoring.performance_tolerance == 0.05 and spec.key_column == "sample_id"


BAD_REFERENCES = [
    "botany.iris.pipeline.build_pipeline",
    "botany.iris.pipeline:",
    ":build_pipeline",
    "a:b:c",
    "ml_platform/models:build_pipeline",
    "../evil:run",
    "1module:attribute",
    "module:attribute.nested",
    "module: attribute",
    "",
]


@pytest.mark.parametrize("field", ["contract", "feature_contract", "pipeline"])
@pytest.mark.parametrize("ref", BAD_REFERENCES)
def test_bad_import_references_are_refused(field, ref):
    with pytest.raises(ValidationError, match="is not an import reference of the form 'package.module:attribute'"):
        ModelSpec(**spec_fields(**{field: ref}))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"label_values": ("only",)}, "label_values"),
        ({"features": ()}, "features"),
        ({"min_rows": 0}, "min_rows"),
        ({"split": {"test_fraction": 0.0}}, "test_fraction"),
        ({"split": {"test_fraction": 1.0}}, "test_fraction"),
        ({"policy": {"min_metrics": {}}}, "min_metrics"),
        ({"policy": {"min_metrics": {"auc": 0.9}}}, "min_metrics"),
        ({"policy": {"min_metrics": {"accuracy": 0.9}, "comparison_metric": "auc"}}, "comparison_metric"),
        ({"policy": {"min_metrics": {"accuracy": 0.9}, "baseline_margin": -0.1}}, "baseline_margin"),
        ({"policy": {"min_metrics": {"accuracy": 0.9}, "champion_tolerance": -0.1}}, "champion_tolerance"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_out_of_range_or_unknown_settings_are_refused(overrides, field):
    with pytest.raises(ValidationError, match=field):
        ModelSpec(**spec_fields(**overrides))


def test_spec_is_frozen():
    spec = ModelSpec(**spec_fields())
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "../elsewhere"
    assert spec.name == "demo"


# --- derived values ----------------------------------------------------------------------------------------


def test_required_columns_of_conversion_list_key_label_features_segment_and_event_time_once():
    assert CONVERSION.required_columns == (
        "session_id",
        "converted",
        "region",
        "device",
        "price",
        "discount",
        "pages_viewed",
        "time_on_site_s",
        "returning_customer",
        "event_time",
    )


def test_required_columns_of_iris_have_no_segment_or_event_time():
    assert IRIS.required_columns == (
        "sample_id",
        "species",
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    )


def test_required_columns_skip_a_missing_key_column_and_add_a_segment_column_that_is_not_a_feature():
    spec = ModelSpec(**spec_fields(segments={"column": "site", "min_share": {"a": 0.2}}))
    assert spec.key_column is None
    assert spec.required_columns == ("species", "sepal_length", "sepal_width", "site")


def test_landing_path_defaults_to_the_home_landing_folder(tmp_path):
    assert IRIS.landing_path(tmp_path) == tmp_path / "landing" / "iris"


def test_relative_landing_dir_is_under_the_home(tmp_path):
    spec = ModelSpec(**spec_fields(landing_dir="exports/demo"))
    assert spec.landing_path(tmp_path) == tmp_path / "exports" / "demo"


def test_absolute_landing_dir_is_used_as_is(tmp_path):
    elsewhere = tmp_path / "mounted" / "exports"
    spec = ModelSpec(**spec_fields(landing_dir=str(elsewhere)))
    assert spec.landing_path(tmp_path / "home") == elsewhere


def test_landing_dir_with_tilde_expands_to_the_user_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    spec = ModelSpec(**spec_fields(landing_dir="~/exports"))
    assert spec.landing_path(tmp_path / "platform") == tmp_path / "user" / "exports"


def test_params_digest_is_stable():
    digest = CONVERSION.params_digest()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert CONVERSION.params_digest() == digest
    assert variant(CONVERSION).params_digest() == digest


def test_params_digest_ignores_the_order_of_params():
    reordered = dict(reversed(list(CONVERSION.params.items())))
    assert list(reordered) != list(CONVERSION.params)
    assert variant(CONVERSION, params=reordered).params_digest() == CONVERSION.params_digest()


@pytest.mark.parametrize(
    "overrides",
    [
        {"params": {**CONVERSION.params, "max_iter": 151}},
        {"params": {**CONVERSION.params, "extra": None}},
        {"split": {**CONVERSION.split.model_dump(), "seed": 43}},
        {"split": {**CONVERSION.split.model_dump(), "test_fraction": 0.2}},
        {"split": {**CONVERSION.split.model_dump(), "stratified": False}},
        {"features": tuple(reversed(CONVERSION.features))},
        {"features": CONVERSION.features[:-1]},
        {"label": "returning_customer", "features": CONVERSION.features[:-1]},
        {"pipeline": "botany.iris.pipeline:build_pipeline"},
    ],
)
def test_params_digest_changes_with_what_training_is_told(overrides):
    assert variant(CONVERSION, **overrides).params_digest() != CONVERSION.params_digest()


@pytest.mark.parametrize(
    "overrides",
    [{"description": "something else"}, {"min_rows": 5_000}, {"policy": {"min_metrics": {"accuracy": 0.5}}}],
)
def test_params_digest_ignores_what_training_is_not_told(overrides):
    assert variant(CONVERSION, **overrides).params_digest() == CONVERSION.params_digest()


@pytest.mark.parametrize(("name", "dagster_name"), [("iris", "iris"), ("churn-v2", "churn_v2"), ("a-b-c", "a_b_c")])
def test_dagster_name_replaces_dashes(name, dagster_name):
    assert ModelSpec(**spec_fields(name=name)).dagster_name == dagster_name


# --- references --------------------------------------------------------------------------------------------


def test_resolve_ref_returns_the_named_attribute():
    from botany.iris.pipeline import build_pipeline as iris_pipeline

    assert resolve_ref(IRIS_PIPELINE) is iris_pipeline


def test_resolve_ref_names_a_missing_attribute():
    with pytest.raises(ImportError, match=r"module 'botany.iris.pipeline' has no attribute 'nope'"):
        resolve_ref("botany.iris.pipeline:nope")


def test_resolve_ref_raises_for_a_missing_module():
    with pytest.raises(ModuleNotFoundError, match="botany.no_such_model"):
        resolve_ref("botany.no_such_model.pipeline:build_pipeline")


# --- the shipped specs -------------------------------------------------------------------------------------


def test_shipped_specs_have_unique_names():
    assert len({spec.name for spec in SPECS}) == len(SPECS)
    assert len({spec.dagster_name for spec in SPECS}) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_shipped_spec_resolves_its_contracts(spec):
    contract = resolve_ref(spec.contract)
    feature_contract = resolve_ref(spec.feature_contract)
    assert issubclass(contract, pa.DataFrameModel)
    assert issubclass(feature_contract, contract)
    raw_columns = set(contract.to_schema().columns)
    assert set(spec.required_columns) <= raw_columns
    assert set(feature_contract.to_schema().columns) == raw_columns | {"split"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_shipped_spec_builds_an_unfitted_pipeline(spec):
    assert callable(resolve_ref(spec.pipeline))
    pipeline = build_pipeline(spec)
    assert isinstance(pipeline, Pipeline)
    with pytest.raises(NotFittedError):
        check_is_fitted(pipeline)
    assert build_pipeline(spec) is not pipeline
