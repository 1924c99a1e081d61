"""One dashboard over every project namespace of a home: a FastAPI application with Plotly
charts, read-only over MLflow, the Dagster instance, the BentoML store and deployment records,
the Evidently reports and the hardware resource. ``make dashboard`` serves it on 127.0.0.1:8000.

Nothing in the Dagster code location imports this package.
"""
