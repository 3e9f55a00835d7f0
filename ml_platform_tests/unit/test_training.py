"""Unit tests for fitting and scoring on small data, behavioural model tests, and lineage fingerprints."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
import sklearn
from botany.iris import demo_data as iris_data
from botany.iris.contract import IrisRecord
from growth.conversion import demo_data as conversion_data
from growth.conversion.contract import ConversionRecord
from growth.conversion.spec import REGIONS
from sklearn.dummy import DummyClassifier
from threadpoolctl import threadpool_limits

from ml_platform.rules.features import SPLIT_COLUMN, build_feature_frame
from ml_platform.rules.training import evaluate, fit_baseline, fit_candidate, score, train_test_frames
from ml_platform.stores import lineage
from ml_platform.stores.lineage import CodeVersion, candidate_fingerprint, code_version
from ml_platform_tests.models import CONVERSION, IRIS

SPECIES = ["setosa", "versicolor", "virginica"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """HistGradientBoosting's OpenMP threads cost more than they save on a few thousand rows."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def iris_features() -> pd.DataFrame:
    return build_feature_frame(iris_data.generate(), IRIS, IrisRecord)


@pytest.fixture(scope="module")
def iris_model(iris_features):
    return fit_candidate(iris_features, IRIS)


@pytest.fixture(scope="module")
def conversion_features() -> pd.DataFrame:
    return build_feature_frame(conversion_data.generate(rows=2000, seed=0), CONVERSION, ConversionRecord)


@pytest.fixture(scope="module")
def conversion_model(conversion_features):
    return fit_candidate(conversion_features, CONVERSION)


@pytest.fixture(scope="module")
def conversion_test_rows(conversion_features) -> pd.DataFrame:
    _, _, x_test, _ = train_test_frames(conversion_features, CONVERSION)
    return x_test


# --- train_test_frames -------------------------------------------------------------------------------------


def test_train_test_frames_split_by_the_recorded_column_and_keep_only_features(iris_features):
    x_train, y_train, x_test, y_test = train_test_frames(iris_features, IRIS)
    assert list(x_train.columns) == list(IRIS.features) == list(x_test.columns)
    assert len(x_train) == len(y_train) == (iris_features[SPLIT_COLUMN] == "train").sum() == 105
    assert len(x_test) == len(y_test) == 45
    assert set(x_train.index).isdisjoint(x_test.index)
    assert y_test.name == "species"


# --- evaluate ----------------------------------------------------------------------------------------------


def test_iris_candidate_metrics_are_in_range_and_high(iris_model, iris_features):
    result = evaluate(iris_model, iris_features, IRIS)
    for name in ("accuracy", "f1_weighted", "f1_macro", "balanced_accuracy"):
        assert 0.85 <= result.metric(name) <= 1.0, name
    assert result.classes == SPECIES
    assert set(result.f1_per_class) == set(SPECIES)
    assert all(0.0 <= value <= 1.0 for value in result.f1_per_class.values())
    assert result.f1_per_segment == {} and result.rows_per_segment == {}


def test_iris_confusion_matrix_counts_every_test_row(iris_model, iris_features):
    result = evaluate(iris_model, iris_features, IRIS)
    confusion = np.array(result.confusion)
    assert result.test_rows == 45
    assert confusion.shape == (3, 3)
    assert confusion.sum() == result.test_rows
    assert confusion.sum(axis=1).tolist() == [15, 15, 15]
    assert np.trace(confusion) / confusion.sum() == pytest.approx(result.accuracy)


def test_conversion_metrics_per_region(conversion_model, conversion_features):
    result = evaluate(conversion_model, conversion_features, CONVERSION)
    assert result.classes == ["0", "1"]
    assert set(result.f1_per_segment) == set(REGIONS) == set(result.rows_per_segment)
    assert sum(result.rows_per_segment.values()) == result.test_rows == 500
    assert np.array(result.confusion).sum() == result.test_rows
    assert all(0.5 < f1 <= 1.0 for f1 in result.f1_per_segment.values())
    assert 0.7 < result.f1_macro <= 1.0


def test_segment_missing_from_the_test_split_is_counted_with_zero_rows(conversion_model, conversion_features):
    without_apac = conversion_features[
        ~((conversion_features["region"] == "apac") & (conversion_features[SPLIT_COLUMN] == "test"))
    ]
    result = evaluate(conversion_model, without_apac, CONVERSION)
    assert result.rows_per_segment["apac"] == 0
    assert "apac" not in result.f1_per_segment
    assert set(result.f1_per_segment) == set(REGIONS) - {"apac"}


def test_evaluate_scores_only_the_test_rows(iris_model, iris_features):
    before = evaluate(iris_model, iris_features, IRIS)
    train = iris_features[SPLIT_COLUMN] == "train"
    scrambled = iris_features.copy()
    scrambled.loc[train, "species"] = "setosa"
    assert evaluate(iris_model, scrambled, IRIS) == before


# --- fit_candidate -----------------------------------------------------------------------------------------


def test_candidate_is_fitted_on_the_train_rows_only(iris_model, iris_features):
    x_train, _, _, _ = train_test_frames(iris_features, IRIS)
    scaler = iris_model.named_steps["scale"]
    assert scaler.n_samples_seen_ == len(x_train) == 105
    np.testing.assert_allclose(scaler.mean_, x_train.mean().to_numpy())
    assert list(iris_model.feature_names_in_) == list(IRIS.features)


def test_test_rows_do_not_change_the_fitted_candidate(iris_model, iris_features):
    test = iris_features[SPLIT_COLUMN] == "test"
    poisoned = iris_features.copy()
    poisoned.loc[test, "species"] = "setosa"
    poisoned.loc[test, list(IRIS.features)] = 29.0
    refitted = fit_candidate(poisoned, IRIS)
    x_train, _, _, _ = train_test_frames(iris_features, IRIS)
    probe = pd.concat([x_train, x_train * 1.1])
    np.testing.assert_array_equal(refitted.predict_proba(probe), iris_model.predict_proba(probe))


def test_candidate_does_not_mutate_the_feature_frame(iris_features):
    before = iris_features.copy()
    fit_candidate(iris_features, IRIS)
    pd.testing.assert_frame_equal(iris_features, before)


# --- fit_baseline ------------------------------------------------------------------------------------------


def test_iris_baseline_is_at_chance_level(iris_features, iris_model):
    baseline = fit_baseline(iris_features, IRIS)
    assert isinstance(baseline, DummyClassifier)
    result = evaluate(baseline, iris_features, IRIS)
    assert result.balanced_accuracy == pytest.approx(1 / 3, abs=0.15)
    assert result.accuracy < 0.5
    assert evaluate(iris_model, iris_features, IRIS).f1_weighted > result.f1_weighted + IRIS.policy.baseline_margin


def test_conversion_baseline_is_at_chance_level(conversion_features, conversion_model):
    baseline = fit_baseline(conversion_features, CONVERSION)
    assert isinstance(baseline, DummyClassifier)
    result = evaluate(baseline, conversion_features, CONVERSION)
    assert result.balanced_accuracy == pytest.approx(0.5, abs=0.1)
    candidate = evaluate(conversion_model, conversion_features, CONVERSION)
    assert candidate.f1_macro > result.f1_macro + CONVERSION.policy.baseline_margin


def test_baseline_ignores_the_features(conversion_features, conversion_test_rows):
    baseline = fit_baseline(conversion_features, CONVERSION)
    shuffled = conversion_test_rows.sample(frac=1.0, random_state=1).set_axis(conversion_test_rows.index)
    np.testing.assert_array_equal(baseline.predict_proba(conversion_test_rows), baseline.predict_proba(shuffled))


# --- behaviour of the conversion model ---------------------------------------------------------------------


def mean_conversion(model, rows: pd.DataFrame) -> float:
    return float(model.predict_proba(rows)[:, list(model.classes_).index(1)].mean())


@pytest.mark.parametrize("extra_pages", [1, 3])
def test_more_pages_viewed_raise_predicted_conversion(conversion_model, conversion_test_rows, extra_pages):
    engaged = conversion_test_rows.assign(pages_viewed=conversion_test_rows["pages_viewed"] + extra_pages)
    assert mean_conversion(conversion_model, engaged) > mean_conversion(conversion_model, conversion_test_rows) + 0.02


def test_higher_price_lowers_predicted_conversion(conversion_model, conversion_test_rows):
    pricier = conversion_test_rows.assign(price=conversion_test_rows["price"] * 1.5)
    assert mean_conversion(conversion_model, pricier) < mean_conversion(conversion_model, conversion_test_rows) - 0.05


def test_session_id_is_not_a_feature(conversion_model, conversion_features):
    assert "session_id" not in CONVERSION.features
    assert "session_id" not in conversion_model.feature_names_in_
    test = conversion_features[conversion_features[SPLIT_COLUMN] == "test"]
    relabelled = test.assign(session_id=[f"other-{i}" for i in range(len(test))])
    np.testing.assert_array_equal(
        conversion_model.predict_proba(test[list(CONVERSION.features)]),
        conversion_model.predict_proba(relabelled[list(CONVERSION.features)]),
    )


def test_predictions_do_not_depend_on_the_batch(conversion_model, conversion_test_rows):
    whole = conversion_model.predict_proba(conversion_test_rows)
    one_by_one = np.vstack([conversion_model.predict_proba(conversion_test_rows.iloc[[i]]) for i in range(20)])
    np.testing.assert_allclose(one_by_one, whole[:20])


# --- lineage -----------------------------------------------------------------------------------------------

CODE = CodeVersion("0123456789abcdef0123456789abcdef01234567", False, "git")


IDENTITY = "c0de" * 16


def test_candidate_fingerprint_is_stable():
    first = candidate_fingerprint("snap-1", IDENTITY, "params-1")
    assert first == candidate_fingerprint("snap-1", IDENTITY, "params-1")
    assert len(first) == 64


@pytest.mark.parametrize(
    ("snapshot_id", "code_identity", "params_digest"),
    [("snap-2", IDENTITY, "params-1"), ("snap-1", "f" * 64, "params-1"), ("snap-1", IDENTITY, "params-2")],
    ids=["snapshot", "model code", "params"],
)
def test_candidate_fingerprint_changes_with_each_input(snapshot_id, code_identity, params_digest):
    assert candidate_fingerprint(snapshot_id, code_identity, params_digest) != candidate_fingerprint(
        "snap-1", IDENTITY, "params-1"
    )


def test_candidate_fingerprint_changes_with_the_spec_params_digest():
    retuned = CONVERSION.model_validate(CONVERSION.model_dump() | {"params": {**CONVERSION.params, "max_iter": 10}})
    assert candidate_fingerprint("snap-1", IDENTITY, retuned.params_digest()) != candidate_fingerprint(
        "snap-1", IDENTITY, CONVERSION.params_digest()
    )


def test_code_version_label_is_short_and_marks_a_dirty_tree():
    assert CODE.label == "0123456789ab"
    assert CodeVersion(CODE.commit, True, "git").label == "0123456789ab+dirty"


def test_stamped_code_version_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ML_PLATFORM_CODE_VERSION", "v1.4.2-abc123")
    assert code_version(tmp_path) == CodeVersion("v1.4.2-abc123", False, "ML_PLATFORM_CODE_VERSION")


def test_code_version_outside_a_git_repository_is_unknown_and_dirty(monkeypatch, tmp_path):
    monkeypatch.delenv("ML_PLATFORM_CODE_VERSION", raising=False)
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert code_version(tmp_path) == CodeVersion("unknown", True, "no git repository")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_code_version_reads_the_commit_and_tracked_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("ML_PLATFORM_CODE_VERSION", "")
    monkeypatch.delenv("GIT_DIR", raising=False)

    def git(*args: str) -> str:
        identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
        return subprocess.run(
            ["git", *identity, *args], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD").strip()
    assert code_version(tmp_path) == CodeVersion(head, False, "git")

    (tmp_path / "untracked.txt").write_text("scratch")
    assert code_version(tmp_path).dirty is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path) == CodeVersion(head, True, "git")


def test_package_versions_cover_the_tracked_packages():
    versions = lineage.package_versions()
    assert set(versions) == set(lineage.TRACKED_PACKAGES)
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["pandas"] == metadata.version("pandas")


@pytest.mark.parametrize("seed", range(6))
def test_metrics_from_counts_equal_scikit_learns(seed):
    """``score`` derives every metric from confusion counts for speed; scikit-learn is the reference.

    Random labels cover a class that is only ever predicted, a class that is never predicted, string
    and integer labels, and a declared segment with no rows.
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

    rng = np.random.default_rng(seed)
    labels = np.array(["setosa", "versicolor", "virginica", "other"]) if seed % 2 else np.array([0, 1, 2, 3])
    truth = rng.choice(labels[:3], size=400, p=[0.6, 0.3, 0.1])
    predicted = np.where(rng.random(400) < 0.7, truth, rng.choice(labels[[0, 1, 3]], size=400))
    segments = rng.choice(["north", "south", "east"], size=400)
    result = score(truth, predicted, (segments, ("north", "south", "east", "west")))

    union = sorted(set(truth.tolist()) | set(predicted.tolist()), key=str)
    assert result.classes == [str(c) for c in union]
    assert result.accuracy == pytest.approx(accuracy_score(truth, predicted))
    assert result.f1_macro == pytest.approx(f1_score(truth, predicted, average="macro", zero_division=0))
    assert result.f1_weighted == pytest.approx(f1_score(truth, predicted, average="weighted", zero_division=0))
    assert result.balanced_accuracy == pytest.approx(balanced_accuracy_score(truth, predicted))
    per_class = f1_score(truth, predicted, labels=union, average=None, zero_division=0)
    assert list(result.f1_per_class.values()) == pytest.approx(per_class.tolist())
    assert result.confusion == confusion_matrix(truth, predicted, labels=union).tolist()
    for segment in ("north", "south", "east"):
        mask = segments == segment
        expected = f1_score(truth[mask], predicted[mask], average="weighted", zero_division=0)
        assert result.f1_per_segment[segment] == pytest.approx(expected)
        assert result.rows_per_segment[segment] == int(mask.sum())
    assert result.rows_per_segment["west"] == 0 and "west" not in result.f1_per_segment
