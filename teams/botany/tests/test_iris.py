"""The iris model's own gates, run the way the platform runs them: passing on good data, failing on bad."""

from pathlib import Path

from botany.iris.demo_data import generate

from ml_platform.testing import declared_spec, run_gates

SPEC = declared_spec(Path(__file__).parents[1] / "src" / "botany" / "defs" / "iris" / "defs.yaml")


def test_the_bundled_flowers_pass_every_gate_and_become_champion(tmp_path):
    run = run_gates(SPEC, generate(), tmp_path)
    assert run.success, run.failures
    assert run.failed_gates == []
    assert "registry_entry" in run.materialized


def test_a_negative_petal_breaks_the_contract_before_training(tmp_path):
    frame = generate()
    frame.loc[:4, "petal_length"] = -1.0
    run = run_gates(SPEC, frame, tmp_path)
    assert not run.success
    assert "schema_holds" in run.failed_gates
    assert "candidate_model" not in run.materialized


def test_a_missing_species_stops_the_snapshot(tmp_path):
    frame = generate()
    run = run_gates(SPEC, frame[frame["species"] != "virginica"], tmp_path)
    assert not run.success
    assert "labels_are_known" in run.failed_gates
