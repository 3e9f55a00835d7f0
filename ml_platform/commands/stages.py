"""`ml-platform` sub-commands: stages."""


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
