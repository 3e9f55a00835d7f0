"""The botany team's models (team-owned): iris, declared in ``defs/iris/defs.yaml``."""
