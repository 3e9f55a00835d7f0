"""The platform template's pure logic (platform-owned).

Nothing in this package imports Dagster: each function takes frames, specs and plain values and
returns new objects, so it can be tested directly and reused from the CLI, a notebook or a benchmark.
The Dagster wiring in ``ml_platform.defs`` calls these functions and attaches their results as
metadata and check results.
"""
