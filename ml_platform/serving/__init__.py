"""The online server (platform-owned): ``ml-platform serve`` answers predictions for what the registry deploys.

- ``routing``: which cohort (production or canary) a routing key belongs to, sticky by hash.
- ``payload``: MLflow's ``/invocations`` payloads parsed into rows, with the request limits.
- ``validation``: each request checked against the model's raw contract without the label.
- ``batching``: concurrent requests gathered into one ``predict`` call within a bounded wait.
- ``deployment``: the registry watched; verified versions loaded beside the served ones, swapped atomically.
- ``log``: the online inference log, buffered and written once per file.
- ``app`` and ``server``: the Starlette application and the uvicorn process around it
  (the ``ml-platform serve`` command is ``ml_platform.cli.commands.serving``).

Nothing here imports at module level what a request does not need; ``mlflow`` is imported when a
version is loaded.
"""
