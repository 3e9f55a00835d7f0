"""The lifecycle assets of one model, one builder each (platform-owned wiring).

    <model>/dataset_snapshot ─► <model>/validated_features ─► <model>/candidate_model ─► <model>/registry_entry
      data gates (blocking)        feature contract (blocking)    model gates (blocking)

``snapshot.build_snapshot``, ``features.build_features``, ``candidate.build_candidate`` and
``registry.build_registry`` each return one asset with its checks; ``ml_platform.defs.factory``
composes them into a model's definitions and its lifecycle job.

Values do not travel through an IO manager: each asset writes its output to an immutable, content-
addressed place (or to MLflow) and records the address in its materialization metadata; the next
asset reads that address and first verifies that every upstream gate passed for that very subject
(``ml_platform.defs.gating``). Nothing is overwritten, and every hop of the evidence chain is in
Dagster's event log.
"""
