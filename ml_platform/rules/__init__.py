"""The platform's pure rules (platform-owned): specs, contracts, features, gates, drift, metrics, decisions.

Nothing in this package imports Dagster or touches a store: each function takes frames, specs and plain
values and returns new objects, so it can be tested directly and reused from a sensor, a stage command,
a notebook or a benchmark. ``ml_platform.stores`` holds the adapters that read and write storage;
``ml_platform.defs`` wires both into Dagster assets, checks and sensors.
"""
