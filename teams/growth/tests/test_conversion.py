"""The conversion model's own gates, run the way the platform runs them: passing on good data, failing on bad."""

from growth.conversion.demo_data import generate
from growth.conversion.spec import SPEC

from ml_platform.testing import run_gates

SMALL = SPEC.model_copy(update={"params": {**SPEC.params, "max_iter": 60}})


def test_two_weeks_of_sessions_pass_every_gate_and_become_champion(tmp_path):
    run = run_gates(SMALL, generate(rows=4_000, seed=1), tmp_path)
    assert run.success, run.failures
    assert run.failed_gates == []
    assert "registry_entry" in run.materialized


def test_a_partial_export_fails_the_segment_gate(tmp_path):
    run = run_gates(SMALL, generate(rows=4_000, seed=1, regions=("us-east",)), tmp_path)
    assert not run.success
    assert "has_every_segment" in run.failed_gates
    assert "candidate_model" not in run.materialized
