"""ml_platform: a model's lifecycle as gated Dagster assets, with an MLflow registry.

Importing this package is cheap on purpose: Dagster's code server, the webserver and the CLI import it
on every start, so nothing here touches MLflow, scikit-learn, the disk or the network.
"""

__version__ = "0.1.0"
