"""Dagster wiring (platform-owned): turns each ``ModelSpec`` into assets, gates and resources.

Asset bodies here do three things: load inputs and resources, call a pure function from
``ml_platform.rules`` and ``ml_platform.stores``, attach the result as metadata. The rules themselves live in ``rules``.
"""
