"""The conversion model through the Dagster UI, as a person uses it, in a real browser.

First the global lineage page, where every model shows as two groups: ``<model>``, exactly the
lifecycle job's four assets, and ``<model>_serving``, the scoring batches (one partition per file)
and the decision ledger. Its "Materialize all (N)…" spans every model *and* every scoring batch, so
Dagster asks for partitions (its trailing "…" says so) instead of launching a run; a person runs one
model's lifecycle from that model's group, as one run.

Then one story, because each step builds on the one before: materialize the model's group from the
global page, watch the run succeed with every gate passed, its numbers beside each check and the
evidence figures rendered; then land a one-region partial export, "Materialize all" on the model's
own graph, and watch the run fail on ``has_every_segment`` with nothing downstream materialized.
Screenshots of every step go to test-artifacts/ui/.
"""

from __future__ import annotations

import re
import time

import pytest
from growth.conversion.demo_data import generate
from playwright.sync_api import expect

from ml_platform.keys import LIFECYCLE_ASSETS, ModelKeys
from ml_platform.rules import contracts, policy
from ml_platform_tests.models import CONVERSION, SPECS
from ml_platform_tests.ui.conftest import ARTIFACTS, DEMO_ROWS, LOCATION

pytestmark = pytest.mark.timeout(900)

MODEL = CONVERSION.name
GRAPH = f"/locations/{LOCATION}/asset-groups/{MODEL}/lineage"
GLOBAL_GRAPH = "/asset-groups"
ASSETS = LIFECYCLE_ASSETS
MATERIALIZABLE = len(SPECS) * (len(LIFECYCLE_ASSETS) + 1)  # each model's lifecycle and its batch_predictions
DOWNSTREAM = ASSETS[1:]
CHECKS = {
    "dataset_snapshot": len(contracts.snapshot_gate_names(CONVERSION)),
    "validated_features": 1,
    "candidate_model": len(policy.model_gate_names(CONVERSION)),
}
RUN_SECONDS = 420  # the timeout of a run on a loaded two-core machine, not an expectation
WAIT_MS = 90_000  # how long any element may take to show on a loaded two-core machine (Playwright's default: 30 s)
SETTLE_SECONDS = 2  # nodes say "Loading…" at first


def shoot(page, name: str) -> None:
    time.sleep(SETTLE_SECONDS)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def dismiss_first_visit_dialog(page) -> None:
    """The "Join the Dagster community" dialog opens once per instance, a moment after the first page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=15_000)
    except PlaywrightTimeout:
        return
    skip.click()
    skip.wait_for(state="hidden")


def open_graph(page, base: str):
    page.goto(base + GRAPH)
    materialize = page.get_by_role("button", name="Materialize all")
    materialize.wait_for(timeout=120_000)
    for asset in ASSETS:
        page.get_by_text(asset, exact=True).first.wait_for()
    return materialize


def materialize_all(page, base: str, screenshot: str) -> str:
    """Click "Materialize all" on the model's graph; the run id."""
    open_graph(page, base).click()
    return launched_run(page, screenshot)


def launched_run(page, screenshot: str) -> str:
    """The run id from the "Launched run" toast, which links to the run."""
    toast = page.get_by_text(re.compile(r"Launched run"))
    toast.wait_for(timeout=60_000)
    shoot(page, screenshot)
    href = page.locator("a[href*='/runs/']").first.get_attribute("href")
    run_id = href.rsplit("/", 1)[-1]
    assert toast.inner_text().strip().endswith(run_id[:8]), toast.inner_text()
    return run_id


def group_node(page, group: str):
    """A (collapsed) group's box on the global lineage page."""
    return page.locator("foreignObject.group > div").filter(has=page.get_by_text(group, exact=True))


def open_global_graph(page, base: str):
    page.goto(base + GLOBAL_GRAPH)
    materialize = page.get_by_role("button", name=re.compile(r"Materialize all"))
    materialize.wait_for(timeout=120_000)
    for spec in SPECS:
        group_node(page, ModelKeys(spec.name).group).wait_for()
        group_node(page, ModelKeys(spec.name).serving_group).wait_for()
    return materialize


def materialize_group_from_global_graph(page, base: str, screenshot: str) -> str:
    """Right-click the model's group on the global page, "Materialize assets (4)"; the run id."""
    open_global_graph(page, base)
    group_node(page, ModelKeys(MODEL).group).click(button="right")
    page.get_by_role("menuitem", name=f"Materialize assets ({len(LIFECYCLE_ASSETS)})").click()
    return launched_run(page, screenshot)


def run_ids(dagster_ui) -> list[str]:
    query = "{ runsOrError { ... on Runs { results { runId } } } }"
    return [run["runId"] for run in dagster_ui.graphql(query)["runsOrError"]["results"]]


def metadata_row(page, key: str) -> str:
    """The text of a metadata table's row for ``key`` (key and value, whitespace between)."""
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True)).first
    row.wait_for()
    return row.inner_text().strip()


def run_status(page, base: str, run_id: str) -> str:
    page.goto(f"{base}/runs/{run_id}")
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    status.wait_for(timeout=RUN_SECONDS * 1000)
    return status.inner_text()


def latest_materialization_runs(dagster_ui) -> dict[str, str | None]:
    query = """query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) {
        ... on AssetNode { assetMaterializations(limit: 1) { runId } } } }"""
    runs = {}
    for asset in ASSETS:
        events = dagster_ui.graphql(query, {"path": [MODEL, asset]})["assetNodeOrError"]["assetMaterializations"]
        runs[asset] = events[0]["runId"] if events else None
    return runs


def open_markdown_image(page, key: str):
    """Open a Markdown metadata entry's "[Show Markdown]" dialog; the image it renders."""
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
    row.first.scroll_into_view_if_needed()
    row.first.get_by_text("Show Markdown").click()
    # Named by its alt text: a dialog still fading out may hold the previous figure.
    image = page.get_by_role("dialog").locator(f"img[alt='{key}.png'][src^='data:image/png;base64,']")
    image.wait_for()
    return image


def rendered_width(image) -> int:
    """The image's width once decoded (``img.complete`` may still be false the moment it is attached); a PNG
    that cannot be decoded fails the evaluation."""
    return image.evaluate("img => img.decode().then(() => img.naturalWidth)")


@pytest.fixture
def page(browser, request):
    """A browser tab; on failure, what it showed is kept as failure.png and failure.txt."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    # Should the first-visit dialog open later than expected, it must not swallow a click.
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    yield page
    if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
        page.screenshot(path=str(ARTIFACTS / "failure.png"))
        (ARTIFACTS / "failure.txt").write_text(f"{page.url}\n\n{page.locator('body').inner_text()}")
    page.close()


def test_the_global_page_asks_for_partitions_for_everything_and_offers_each_lifecycle_as_one_run(dagster_ui, page):
    base = dagster_ui.url
    materialize = open_global_graph(page, base)
    dismiss_first_visit_dialog(page)
    shoot(page, "00-global-graph")
    launched_before = run_ids(dagster_ui)

    # "Materialize all" spans every lifecycle and every scoring batch: Dagster asks for partitions.
    expect(materialize).to_have_text(f"Materialize all ({MATERIALIZABLE})…", timeout=WAIT_MS)
    materialize.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Launch runs to materialize {MATERIALIZABLE} assets").wait_for()
    dialog.get_by_text(re.compile(r"different partition definitions")).wait_for()
    expect(dialog.get_by_role("button", name="Launch backfill")).to_have_count(1, timeout=WAIT_MS)
    shoot(page, "00-global-materialize-all-asks-for-partitions")
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="hidden")

    # A model's group is exactly its lifecycle: its menu materializes those assets, nothing else.
    group_node(page, ModelKeys(MODEL).group).click(button="right")
    menu = page.get_by_role("menu")
    menu.get_by_role("menuitem", name=f"Materialize assets ({len(LIFECYCLE_ASSETS)})").wait_for()
    shoot(page, "00-global-group-menu")
    page.keyboard.press("Escape")
    menu.wait_for(state="hidden")
    assert run_ids(dagster_ui) == launched_before  # looking launched nothing


def test_materialize_in_the_ui_then_a_partial_export_is_blocked(dagster_ui, page):
    base = dagster_ui.url

    # 1. The model's graph, never materialized.
    open_graph(page, base)
    dismiss_first_visit_dialog(page)
    shoot(page, "01-graph")

    # 2. The model's group, materialized from the global page: one run, and it succeeds.
    first_run = materialize_group_from_global_graph(page, base, "02-launched")
    assert run_ids(dagster_ui) == [first_run]
    status = run_status(page, base, first_run)
    shoot(page, "03-run-succeeded")
    assert status == "Success", f"run {first_run} ended {status}; server log:\n{dagster_ui.log_tail()}"

    # 3. Every gate passed, as each asset's checks tab and the graph's nodes show, with its numbers.
    see_every_gate_passed(page, base)

    # 4. The candidate's evidence renders in the UI: the confusion matrix and the per-segment chart.
    see_evidence_figures(page, base, dagster_ui.paths.home)
    first_materializations = latest_materialization_runs(dagster_ui)
    assert set(first_materializations.values()) == {first_run}

    # 5. A partial export lands: one region, two days.
    landing = dagster_ui.paths.home / "landing" / MODEL
    for old in landing.iterdir():
        old.unlink()
    generate(rows=DEMO_ROWS, seed=1, days=2, regions=("us-east",)).to_csv(landing / "export.csv", index=False)

    # 6. Materialize all on the model's own graph: the run fails on has_every_segment and stops there.
    second_run = materialize_all(page, base, "07-launched-partial")
    status = run_status(page, base, second_run)
    assert status == "Failure", f"run {second_run} on a partial export ended {status}"
    see_run_stopped_by_has_every_segment(page, base)

    # Nothing downstream of the failed gate was materialized by the second run.
    second_materializations = latest_materialization_runs(dagster_ui)
    assert second_materializations["dataset_snapshot"] == second_run
    assert {asset: second_materializations[asset] for asset in DOWNSTREAM} == dict.fromkeys(DOWNSTREAM, first_run)


def see_every_gate_passed(page, base: str) -> None:
    for asset, count in CHECKS.items():
        page.goto(f"{base}/assets/{MODEL}/{asset}?view=checks")
        page.get_by_text(f"Checks ({count})").wait_for()
        shoot(page, f"04-checks-{asset}")
        succeeded = page.get_by_text("Succeeded", exact=True)  # each check's row fills in after the heading
        expect(succeeded, f"{asset}: every one of {count} checks shows Succeeded").to_have_count(count, timeout=WAIT_MS)
        assert page.get_by_text("Failed", exact=True).count() == 0
    page.goto(f"{base}/assets/{MODEL}/dataset_snapshot?view=checks")
    page.get_by_text("has_enough_rows", exact=True).first.click()
    assert re.fullmatch(rf"rows\s+{DEMO_ROWS}", metadata_row(page, "rows"))  # the numbers, not behind Markdown
    assert re.fullmatch(rf"rows\.threshold\s+{CONVERSION.min_rows}", metadata_row(page, "rows.threshold"))
    page.get_by_text("Plots", exact=True).first.wait_for()
    shoot(page, "04-check-numbers-has-enough-rows")
    open_graph(page, base)
    for count in CHECKS.values():
        page.get_by_text(f"{count} / {count} Passed").wait_for()
    shoot(page, "05-graph-gates-passed")


def see_evidence_figures(page, base: str, home) -> None:
    page.goto(f"{base}/assets/{MODEL}/candidate_model")
    page.get_by_role("row").filter(has=page.get_by_text("mlflow_run", exact=True)).first.wait_for()
    run_link = page.get_by_text(re.compile(r"^http://127\.0\.0\.1:5000/#/experiments/\d+/runs/[0-9a-f]{32}$"))
    expect(run_link).not_to_have_count(0, timeout=WAIT_MS)
    for key in ("confusion_matrix", "segment_f1"):
        image = open_markdown_image(page, key)
        assert rendered_width(image) > 100, f"{key} did not render"
        shoot(page, f"06-evidence-{key}")
        page.get_by_role("button", name="Close").click()
        page.get_by_role("dialog").wait_for(state="detached")
    for figure in ("confusion_matrix.png", "segment_f1.png"):
        assert len(list((home / "evidence" / MODEL).glob(f"*/{figure}"))) == 1, f"{figure} not kept beside the evidence"
        assert len(list((home / "mlartifacts").glob(f"**/evaluation/{figure}"))) == 1, f"{figure} not logged to MLflow"


def see_run_stopped_by_has_every_segment(page, base: str) -> None:
    """On the failed run's page, then on the check's page (with its numbers), then on the graph."""
    page.get_by_text("Errored (1)").wait_for()
    shoot(page, "08-run-failed")
    registry_step = f"{CONVERSION.dagster_name}__registry_entry"
    page.get_by_text(re.compile(rf"Dependencies for step {registry_step} .*Not executing")).wait_for()
    page.get_by_placeholder("Filter…").fill("has_every_segment")
    failed = re.compile(rf"^Check has_every_segment failed for materialization of {MODEL} / dataset_snapshot\.?$")
    page.get_by_text(failed).first.wait_for()
    shoot(page, "09-run-failed-has-every-segment")

    page.goto(f"{base}/assets/{MODEL}/dataset_snapshot?view=checks")
    page.get_by_text(f"Checks ({CHECKS['dataset_snapshot']})").wait_for()
    page.get_by_text("has_every_segment", exact=True).first.click()
    page.get_by_text(re.compile(r"has_every_segment failed on dataset_snapshot")).first.wait_for()
    share = "region 'eu-west' share"
    assert re.fullmatch(rf"{share}\s+0(\.0*)?", metadata_row(page, share)), metadata_row(page, share)
    minimum = CONVERSION.segments.min_share["eu-west"]
    threshold = metadata_row(page, f"{share}.threshold")
    assert re.fullmatch(rf"{share}\.threshold\s+{re.escape(str(minimum))}", threshold), threshold
    shoot(page, "10-check-has-every-segment-failed")

    open_graph(page, base)
    shoot(page, "11-graph-blocked")
    snapshot_gates = CHECKS["dataset_snapshot"]
    page.get_by_text(f"{snapshot_gates - 1} / {snapshot_gates} Passed").wait_for()  # all but has_every_segment
