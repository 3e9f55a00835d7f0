"""``python -m ml_platform.cli``: the same command as ``ml-platform``."""

import sys

from ml_platform.cli import main

sys.exit(main())
