"""A server process for the kill test: ``python -m ml_platform_tests.serving.subprocess_server PORT SPEC_JSON``.

The test's model has a test-unique name that ``ml-platform serve`` cannot look up, so this process
rebuilds the spec from JSON and runs the same application ``ml-platform serve`` runs, with a log that
flushes every 20 rows (so that a kill lands while files are being written).
"""

import sys

import uvicorn

from ml_platform.rules.spec import ModelSpec
from ml_platform.serving.app import build_app
from ml_platform.serving.settings import ServerLimits
from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store

if __name__ == "__main__":
    port, spec = int(sys.argv[1]), ModelSpec.model_validate_json(sys.argv[2])
    paths = PlatformPaths.from_environment()
    store = Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root)
    limits = ServerLimits(log_flush_rows=20, log_flush_seconds=0.2)
    app = build_app([spec], store, paths, limits, poll_seconds=0.2)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
