"""Team-owned models. Each package declares a ``SPEC`` in its light ``spec`` module.

Adding a model is: a package here with a ``spec.py`` (the declaration), a ``contract.py`` (pandera
models) and a ``pipeline.py`` (the unfitted scikit-learn pipeline), and one line in ``SPECS``.
"""

from ml_platform.models.conversion.spec import SPEC as CONVERSION
from ml_platform.models.iris.spec import SPEC as IRIS

SPECS = (IRIS, CONVERSION)


def get_spec(name: str):
    """The spec of a declared model, or a ValueError that lists the declared ones."""
    for spec in SPECS:
        if spec.name == name:
            return spec
    raise ValueError(f"no model named {name!r} is declared; declared models: {[s.name for s in SPECS]}")
