"""The models the pipeline trains, and the code that travels inside their MLflow artifacts.

Not under ``defs/``: Dagster's defs folder imports every module in it, and ``pyfunc_model`` is
MLflow models-from-code (it imports MLflow and calls ``set_model`` when imported)."""
