"""The conversion model's declaration, in Python (the growth team's; ``defs/conversion.py`` hands it over)."""

from datetime import timedelta

from ml_platform.rules.spec import (
    Compute,
    DemoData,
    Freshness,
    ModelSpec,
    Monitoring,
    PromotionPolicy,
    Segments,
    Split,
)

REGIONS = ("us-east", "us-west", "eu-west", "eu-central", "apac")

SPEC = ModelSpec(
    name="conversion",
    description="Retail purchase conversion per session, trained on every region's recent traffic.",
    contract="growth.conversion.contract:ConversionRecord",
    feature_contract="growth.conversion.contract:ConversionFeatures",
    key_column="session_id",
    label="converted",
    label_values=(0, 1),
    features=("region", "device", "price", "discount", "pages_viewed", "time_on_site_s", "returning_customer"),
    segments=Segments(column="region", min_share={region: 0.05 for region in REGIONS}),
    freshness=Freshness(column="event_time", max_age=timedelta(days=3)),
    min_rows=1_000,
    pipeline="growth.conversion.pipeline:build_pipeline",
    params={"max_iter": 150, "learning_rate": 0.1, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42},
    split=Split(test_fraction=0.25, seed=42, stratified=True),
    policy=PromotionPolicy(
        min_metrics={"accuracy": 0.75, "f1_macro": 0.72},
        comparison_metric="f1_macro",
        baseline_margin=0.05,
        champion_tolerance=0.01,
        min_segment_f1=0.65,
    ),
    skops_trusted_types=("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",),
    # On Kubernetes. Measured here: fitting 50,000 rows peaked at 267 MiB resident; MLflow and pandas add more.
    compute=Compute(cpu="1", memory="2Gi"),
    # The performance trigger, judged per day of sessions: at 500 labelled rows the standard error of
    # f1_macro is about 0.02, so a drop of more than 0.05 is unlikely to be noise. Scored traffic is
    # watched for drift too.
    monitoring=Monitoring(
        drift_on_scoring=True,
        performance_tolerance=0.05,
        min_feedback_rows=500,
        performance_window=timedelta(days=1),
        rollback_on_drop=True,
    ),
    # Demo data: two weeks of sessions; a campaign for --drift; one day of traffic for --scoring/--feedback
    # (enough labelled rows for one judged window), whose outcomes a changed market shifts for --degraded.
    demo_data=DemoData(
        generator="growth.conversion.demo_data:generate",
        rows=20_000,
        drift={"campaign": True},
        scoring={"days": 1.0},
        scoring_rows=5_000,
        degraded={"shifted_outcomes": True},
    ),
)
