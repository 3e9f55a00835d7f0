"""``ml-platform serve``: uvicorn around the serving application, on the platform home's stores (platform-owned).

One uvicorn worker per process: the models are loaded once and their batches are what use the CPU;
scale out with more processes (replicas), each following the registry on its own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ml_platform.serving.settings import ServerLimits


def serve(models: Sequence[str], host: str, port: int, limits: ServerLimits, **policy_overrides) -> None:
    """Serve ``models`` (every declared model when empty) until interrupted; the log is flushed on the way out."""
    # One thread per predict call: batching, not OpenMP inside one call, is where online throughput comes
    # from. On a busy machine the OpenMP team of HistGradientBoosting spin-waits: a one-row predict_proba
    # measured 221 ms with the default threads and 26 ms with one (docs/benchmarks.md, Serving).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from ml_platform.discovery import all_specs, get_spec
    from ml_platform.serving.app import build_app
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import Store

    specs = [get_spec(name) for name in models] if models else list(all_specs())
    paths = PlatformPaths.from_environment()
    store = Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = build_app(specs, store, paths, limits, **policy_overrides)
    print(f"serving {[spec.name for spec in specs]} on http://{host}:{port} (ready: GET /ready)", flush=True)
    uvicorn.run(
        app, host=host, port=port, workers=1, access_log=False, log_level="warning", timeout_graceful_shutdown=10
    )
