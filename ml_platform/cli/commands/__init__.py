"""The groups of ``ml-platform`` sub-commands, each registered by its own module.

Each module here exposes ``register(commands)`` and imports nothing heavy at module level, so that
``ml-platform --help`` stays instant.
"""

from importlib import import_module

GROUPS = ("lifecycle", "tools", "decisions", "stages", "release", "serving", "teams")


def register_all(commands) -> None:
    for name in GROUPS:
        import_module(f"{__name__}.{name}").register(commands)
