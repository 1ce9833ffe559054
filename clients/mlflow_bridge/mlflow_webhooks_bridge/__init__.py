"""The MLflow side of the webhooks service: MLflow's registry events into a durable spool, and
from it to the service. Only `app` and `hook` import MLflow; `spool` and `publisher` are plain
Python so that they can be tested anywhere."""

__version__ = "0.1.0"
