"""The growth team's models (team-owned): conversion, declared in Python (``conversion/spec.py``)."""
