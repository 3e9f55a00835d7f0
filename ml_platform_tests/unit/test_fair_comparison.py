"""The champion is never scored on rows it was trained on."""

import pandas as pd

from ml_platform.rules.policy import no_worse_than_champion
from ml_platform.rules.training import CandidateReport, Evaluation, without_champion_training_rows
from ml_platform_tests.models import CONVERSION


def _evaluation(f1: float, test_rows: int) -> Evaluation:
    return Evaluation(f1, f1, f1, f1, {}, {}, {}, [[0]], ["0", "1"], test_rows)


def test_only_test_rows_the_champion_trained_on_are_dropped():
    frame = pd.DataFrame(
        {
            "session_id": ["a", "b", "c", "d"],
            "split": ["train", "test", "test", "train"],
        }
    )
    fair = without_champion_training_rows(frame, CONVERSION, ["a", "b", "x"])
    assert fair["session_id"].tolist() == ["a", "c", "d"]  # "b" was the champion's training row in our test part
    assert frame["session_id"].tolist() == ["a", "b", "c", "d"]  # the input is not changed


def test_the_champion_gate_compares_on_the_fair_rows_and_says_how_many_were_left_out():
    report = CandidateReport(
        candidate=_evaluation(0.80, 1000),
        baseline=_evaluation(0.40, 1000),
        champion=_evaluation(0.84, 700),
        champion_version="3",
        candidate_on_champion_rows=_evaluation(0.85, 700),
        champion_rows_excluded=300,
    )
    result = no_worse_than_champion(report, CONVERSION, "candidate")
    assert result.passed  # 0.85 vs 0.84 on the same 700 rows, although 0.80 on all 1,000
    assert result.rules[0].observed == 0.85
    assert "less the 300 rows the champion trained on (700 rows): champion 0.8400" in result.rules[0].note
    assert CandidateReport.from_dict(report.as_dict()) == report
