"""The iris pipeline (team-owned): scaling and a random forest, fitted together."""

from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def build_pipeline(params: dict) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(**params))])
