"""pytest from the project root: every team's ``src/`` is importable, installed into the environment or not.

A team scaffolded by ``ml-platform new-model`` is usable at once (``workspace.yaml`` points Dagster at its
``src/``); its tests are too, before ``uv lock`` adds it to the environment.
"""

import sys
from pathlib import Path

for source in sorted(Path(__file__).parent.glob("*/src")):
    if str(source) not in sys.path:
        sys.path.append(str(source))
