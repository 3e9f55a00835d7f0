"""The iris model's declaration (team-owned)."""

from ml_platform.rules.spec import ModelSpec, PromotionPolicy, Split

SPEC = ModelSpec(
    name="iris",
    description="Iris species from flower measurements; the course module's first model.",
    contract="ml_platform.models.iris.contract:IrisRecord",
    feature_contract="ml_platform.models.iris.contract:IrisFeatures",
    key_column="sample_id",
    label="species",
    label_values=("setosa", "versicolor", "virginica"),
    features=("sepal_length", "sepal_width", "petal_length", "petal_width"),
    min_rows=100,
    pipeline="ml_platform.models.iris.pipeline:build_pipeline",
    params={"n_estimators": 100, "max_depth": 4, "random_state": 42},
    split=Split(test_fraction=0.3, seed=42, stratified=True),
    policy=PromotionPolicy(
        min_metrics={"accuracy": 0.90, "f1_weighted": 0.90},
        comparison_metric="f1_weighted",
        baseline_margin=0.10,
        champion_tolerance=0.0,
    ),
    skops_trusted_types=("sklearn.tree._tree.Tree",),
)
