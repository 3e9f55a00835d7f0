"""Running a model's lifecycle on a Dagster deployment and reading its gates back (``train --dagster-url``).

The deployment runs the graph where it runs everything (on Kubernetes: a pod with the spec's compute);
this process only submits, waits, and reads the run's event log over GraphQL into the same
``RunOutcome`` an in-process run gives (ml_platform/cli/execution.py), so the exit codes agree.
"""

from __future__ import annotations

import time
from urllib.parse import urlparse

from ml_platform.cli.execution import Gate, RunOutcome
from ml_platform.keys import TRIGGER_TAG, ModelKeys

RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on AssetCheckEvaluationEvent {
          evaluation {
            checkName
            success
            description
            assetKey { path }
            metadataEntries { label ... on MarkdownMetadataEntry { mdStr } ... on TextMetadataEntry { text } }
          }
        }
        ... on ExecutionStepFailureEvent {
          stepKey
          message
          error { message }
          failureMetadata { metadataEntries { label } }
        }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on IntMetadataEntry { intValue }
            ... on BoolMetadataEntry { boolValue }
          }
        }
      }
    }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""
TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")


def execute_remote(spec, url: str, timeout: float) -> RunOutcome:
    """Launch ``<model>_lifecycle`` on the deployment whose webserver is ``url``, wait, and judge its event log.

    Raises:
        ValueError: ``url`` is not a webserver's http(s) URL, or the deployment refused the run.
        ConnectionError: the webserver did not answer (worth a retry).
        TimeoutError: the run did not finish within ``timeout`` seconds.
    """
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"--dagster-url {url!r} is not an http(s) URL of a Dagster webserver")
    client = DagsterGraphQLClient(
        parsed.hostname, port_number=parsed.port, use_https=parsed.scheme == "https", timeout=60
    )
    try:
        run_id = client.submit_job_execution(ModelKeys(spec.name).lifecycle_job, tags={TRIGGER_TAG: "ci"})
        deadline = time.monotonic() + timeout
        status = client.get_run_status(run_id).value
        while status not in TERMINAL_STATUSES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster run {run_id} is still {status} after {timeout:.0f} s")
            time.sleep(3)
            status = client.get_run_status(run_id).value
    except DagsterGraphQLClientError as error:
        if "connecting" in str(error).lower() or "connection" in str(error.__cause__ or "").lower():
            raise ConnectionError(f"the Dagster webserver at {url} is unreachable: {error}") from error
        raise ValueError(f"the Dagster deployment at {url} refused the run: {error}") from error
    outcome = RunOutcome(spec.name, run_id, status == "SUCCESS", outputs={"dagster_status": status})
    outcome.full_log = f"{url.rstrip('/')}/runs/{run_id}"  # the deployment's run page
    _read_events(f"{url.rstrip('/')}/graphql", outcome)
    return outcome


def _read_events(endpoint: str, outcome: RunOutcome) -> None:
    import requests

    cursor = None
    while True:
        variables = {"runId": outcome.run_id, "cursor": cursor}
        response = requests.post(endpoint, json={"query": RUN_EVENTS_QUERY, "variables": variables}, timeout=60)
        response.raise_for_status()
        logs = response.json()["data"]["logsForRun"]
        if logs["__typename"] != "EventConnection":
            raise RuntimeError(f"dagster run {outcome.run_id}: its event log cannot be read: {logs.get('message')}")
        for event in logs["events"]:
            _read_event(event, outcome)
        cursor = logs["cursor"]
        if not logs["hasMore"]:
            return


def _read_event(event: dict, outcome: RunOutcome) -> None:
    kind = event["__typename"]
    if kind == "AssetCheckEvaluationEvent":
        evaluation = event["evaluation"]
        entries = {e["label"]: e.get("mdStr") or e.get("text") for e in evaluation["metadataEntries"]}
        outcome.gates.append(
            Gate(
                "/".join(evaluation["assetKey"]["path"]),
                evaluation["checkName"],
                evaluation["success"],
                evaluation["description"] or "",
                entries.get("gate") or "",
            )
        )
    elif kind == "ExecutionStepFailureEvent":
        labels = {e["label"] for e in (event["failureMetadata"] or {}).get("metadataEntries", [])}
        message = (event["error"] or {}).get("message") or event["message"]
        outcome.note_step_failure(event["stepKey"], message, "contract" in labels)
    elif kind == "MaterializationEvent":
        values = {}
        for entry in event["metadataEntries"]:
            value = next((entry[k] for k in ("text", "intValue", "boolValue") if entry.get(k) is not None), None)
            if value is not None:
                values[entry["label"]] = value
        outcome.note_metadata(values)
