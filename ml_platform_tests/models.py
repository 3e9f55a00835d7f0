"""The shipped teams' models (botany's iris, growth's conversion), found the way the CLI finds them."""

from ml_platform.discovery import declared_models

_DECLARED = declared_models()
IRIS = _DECLARED["iris"].spec
CONVERSION = _DECLARED["conversion"].spec
SPECS = tuple(model.spec for model in _DECLARED.values())
