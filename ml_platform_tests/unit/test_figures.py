"""The evidence figures: what they draw, their PNG and Markdown forms, and their refusals."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from matplotlib.colors import to_hex

from ml_platform.rules import figures
from ml_platform.rules.training import CandidateReport, Evaluation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def evaluation(f1_per_segment: dict[str, float], confusion=((50, 10), (5, 35))) -> Evaluation:
    return Evaluation(
        accuracy=0.85,
        f1_weighted=0.85,
        f1_macro=0.84,
        balanced_accuracy=0.85,
        f1_per_class={"0": 0.87, "1": 0.82},
        f1_per_segment=f1_per_segment,
        rows_per_segment=dict.fromkeys(f1_per_segment, 20),
        confusion=[list(row) for row in confusion],
        classes=["0", "1"],
        test_rows=100,
    )


def bars(figure, label: str):
    axes = figure.axes[0]
    return [patch for container in axes.containers if container.get_label() == label for patch in container]


def test_confusion_matrix_labels_every_cell_with_its_count():
    figure = figures.confusion_matrix_figure([[1200, 30], [7, 400]], ["no", "yes"], "conversion on 1,637 rows")
    axes = figure.axes[0]
    assert sorted(text.get_text() for text in axes.texts) == ["1,200", "30", "400", "7"]
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["no", "yes"]
    assert axes.get_xlabel() == "predicted" and axes.get_ylabel() == "true"
    assert axes.get_title() == "conversion on 1,637 rows"


@pytest.mark.parametrize(
    ("confusion", "classes"),
    [([[1, 2], [3, 4]], ["a", "b", "c"]), ([[1, 2, 3]], ["a"]), ([1, 2], ["a", "b"])],
)
def test_confusion_matrix_refuses_a_matrix_that_does_not_match_the_classes(confusion, classes):
    with pytest.raises(ValueError, match=rf"does not match {len(classes)} classes .*one row and one column per class"):
        figures.confusion_matrix_figure(confusion, classes, "t")


def test_segment_chart_marks_segments_below_the_floor_and_shows_the_champion():
    figure = figures.segment_f1_figure(
        {"us-east": 0.81, "eu-west": 0.55, "apac": 0.9}, {"us-east": 0.8, "eu-west": 0.7}, 0.65, "per segment"
    )
    candidate = bars(figure, "candidate")
    champion = bars(figure, "champion")
    # Segments are drawn in sorted order: apac, eu-west, us-east.
    assert [round(bar.get_height(), 2) for bar in candidate] == [0.9, 0.55, 0.81]
    assert [to_hex(bar.get_facecolor()) for bar in candidate] == [
        figures.CANDIDATE_COLOR,
        figures.BELOW_FLOOR_COLOR,
        figures.CANDIDATE_COLOR,
    ]
    assert [round(bar.get_height(), 2) for bar in champion][1:] == [0.7, 0.8]  # apac: the champion never saw it
    assert [line.get_ydata()[0] for line in figure.axes[0].get_lines()] == [0.65]


def test_segment_chart_without_champion_or_floor_draws_the_candidate_alone():
    figure = figures.segment_f1_figure({"a": 0.1, "b": 0.2}, None, None, "t")
    assert len(bars(figure, "candidate")) == 2
    assert bars(figure, "champion") == []
    assert figure.axes[0].get_lines() == []
    assert {to_hex(bar.get_facecolor()) for bar in bars(figure, "candidate")} == {figures.CANDIDATE_COLOR}


def test_segment_chart_refuses_a_candidate_without_segments():
    with pytest.raises(ValueError, match="no per-segment F1 .*declare segments"):
        figures.segment_f1_figure({}, None, 0.5, "t")


def test_report_figures_have_a_segment_chart_only_when_the_model_has_segments():
    with_segments = CandidateReport(evaluation({"a": 0.9, "b": 0.6}), evaluation({"a": 0.5, "b": 0.5}))
    assert sorted(figures.report_figures(with_segments, "m", 0.7)) == ["confusion_matrix.png", "segment_f1.png"]
    without = CandidateReport(evaluation({}), evaluation({}))
    assert sorted(figures.report_figures(without, "m", None)) == ["confusion_matrix.png"]


def test_report_figures_name_the_champion_they_compare_with():
    report = CandidateReport(
        evaluation({"a": 0.9}), evaluation({"a": 0.5}), champion=evaluation({"a": 0.8}), champion_version="3"
    )
    chart = figures.report_figures(report, "conversion", 0.7)["segment_f1.png"]
    assert chart.axes[0].get_title() == "conversion: F1 per segment, candidate vs champion v3"


def test_png_and_markdown_image_round_trip():
    png = figures.png_bytes(figures.confusion_matrix_figure([[3, 1], [0, 4]], ["0", "1"], "t"))
    assert png.startswith(PNG_SIGNATURE)
    markdown = figures.markdown_image(png, "confusion_matrix.png")
    prefix = "![confusion_matrix.png](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    assert base64.b64decode(markdown[len(prefix) : -1]) == png


def test_markdown_image_refuses_bytes_that_are_not_a_png():
    with pytest.raises(ValueError, match=r"'chart': the bytes are not a PNG \(they start with b'GIF89a"):
        figures.markdown_image(b"GIF89a....", "chart")


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, ml_platform.rules.figures; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def drift_frames():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"price": rng.normal(50, 5, 2000), "pages": rng.poisson(3, 2000), "device": rng.choice(["a", "b"], 2000)}
    )
    batch = pd.DataFrame(
        {"price": rng.normal(80, 5, 500), "pages": rng.poisson(3, 500), "device": rng.choice(["a", "b", "c"], 500)}
    )
    return reference, batch


def test_drift_histograms_draw_one_panel_per_feature_and_mark_the_drifted_ones():
    from ml_platform.rules.drift import measure_drift

    reference, batch = drift_frames()
    report = measure_drift(reference, batch, ["price", "pages", "device"])
    figure = figures.drift_histograms_figure(reference, batch, report, "conversion: drift since the champion")
    panels = {axes.get_title().split(":")[0]: axes for axes in figure.axes}
    assert sorted(panels) == ["device", "pages", "price"]
    red = to_hex(figures.BELOW_FLOOR_COLOR)
    drifted = {f.feature for f in report.features if f.drifted}
    assert "price" in drifted and "pages" not in drifted
    assert {name for name, axes in panels.items() if to_hex(axes.title.get_color()) == red} == drifted
    price = next(f for f in report.features if f.feature == "price")
    assert panels["price"].get_title() == f"price: PSI {price.psi:.3f} / {price.threshold:g}"
    # Shares, not counts: each frame's bars sum to one whatever its size.
    for axes in (panels["price"], panels["device"]):
        assert len(axes.containers) == 2  # the reference, then the batch
        for container in axes.containers:
            assert sum(bar.get_height() for bar in container) == pytest.approx(1.0)
    assert [tick.get_text() for tick in panels["device"].get_xticklabels()] == ["a", "b", "c"]
    assert figures.png_bytes(figure).startswith(PNG_SIGNATURE)


def test_drift_histograms_refuse_a_feature_missing_from_a_frame():
    from ml_platform.rules.drift import measure_drift

    reference, batch = drift_frames()
    report = measure_drift(reference, batch, ["price", "device"])
    with pytest.raises(ValueError, match=r"missing from the frames: \['device \(batch\)'\]"):
        figures.drift_histograms_figure(reference, batch.drop(columns="device"), report, "t")


# rendered by a background process (ml_platform.stores.figure_files)


def test_the_background_renderer_gives_the_same_png_bytes_as_rendering_in_process(tmp_path):
    from ml_platform.stores.figure_files import render_in_background

    report = CandidateReport(
        evaluation({"a": 0.9, "b": 0.6}), evaluation({"a": 0.5}), champion=evaluation({"a": 0.8}), champion_version="2"
    )
    in_process = {name: figures.png_bytes(f) for name, f in figures.report_figures(report, "m", 0.7).items()}

    with render_in_background(report.as_dict(), "m", 0.7, tmp_path / "scratch") as rendering:
        rendered = rendering.result()

    assert rendered == in_process
    assert not (tmp_path / "scratch").exists()  # its scratch folder is gone; the caller keeps the bytes


def test_a_failing_background_renderer_reports_the_drawing_error(tmp_path):
    from ml_platform.errors import FigureRenderingFailed
    from ml_platform.stores.figure_files import render_in_background

    broken = CandidateReport(evaluation({}, confusion=((1, 2, 3),)), evaluation({})).as_dict()

    with (
        render_in_background(broken, "m", None, tmp_path / "scratch") as rendering,
        pytest.raises(FigureRenderingFailed, match=r"exited 1: .*does not match 2 classes"),
    ):
        rendering.result()
