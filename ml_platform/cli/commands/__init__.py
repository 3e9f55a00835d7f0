"""Groups of ``ml-platform`` sub-commands beyond the core ones, each registered by its own module.

Each module here exposes ``register(commands)`` and imports nothing heavy at module level, so that
``ml-platform --help`` stays instant.
"""

from importlib import import_module

GROUPS = ("ml_platform.cli.commands.decisions", "ml_platform.cli.commands.stages")


def register_all(commands) -> None:
    for name in GROUPS:
        import_module(name).register(commands)
