"""The code location the scale benchmark loads: N copies of the conversion model, N from the environment.

``ML_PLATFORM_BENCH_MODELS`` names how many (default 1). Loaded by ``dagster definitions validate -m``,
``dagster-webserver -m`` and ``dagster-daemon run -m`` in ``bench/bench_scale.py``; never by the platform.
"""

import os

from bench.bench_scale import model_specs
from ml_platform.definitions import build_definitions

defs = build_definitions(specs=model_specs(int(os.environ.get("ML_PLATFORM_BENCH_MODELS", "1"))))
