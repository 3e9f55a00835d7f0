"""The botany team's Dagster declarations: one folder per model, each with its ``defs.yaml``."""
