"""The growth team's Dagster declarations."""
