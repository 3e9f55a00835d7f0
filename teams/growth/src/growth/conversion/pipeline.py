"""The conversion pipeline (team-owned): one-hot categories, numeric passthrough, gradient boosting."""

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ["region", "device"]
NUMERIC = ["price", "discount", "pages_viewed", "time_on_site_s", "returning_customer"]


def build_pipeline(params: dict) -> Pipeline:
    prepare = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
            ("numbers", "passthrough", NUMERIC),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("prepare", prepare), ("boosting", HistGradientBoostingClassifier(**params))])
