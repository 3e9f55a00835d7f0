"""Adapters that touch storage (platform-owned): snapshot files, the MLflow registry and tracking store,
the decision ledger and git lineage.

Each module here reads or writes one kind of store and knows nothing of Dagster; the rules it applies
live in ``ml_platform.rules``.
"""
