"""The team stack: the same pipeline on shared services instead of embedded stores.

``python -m resources.stack up|down|status|worker|env|exec|launch`` starts and stops, on this
machine's loopback, an S3-compatible object store (rclone), an MLflow tracking server with its
basic-auth app (PostgreSQL backend, artifacts proxied to the object store), the Dagster webserver
and daemon (PostgreSQL storage, queued run coordinator) and ``dagster-celery`` workers on the
RabbitMQ broker. Everything the stack writes lives under ``$EFFICIENTAI_HOME/stack/``.

This package knows the tools, not the project's assets: job names come from the caller.
"""
