"""`ml-platform` sub-commands: decisions."""


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
