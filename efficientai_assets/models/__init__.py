"""The model families the pipeline trains, and the code that travels inside their MLflow artifacts.

``family.py`` is the interface a family implements, ``families.py`` the registry the run config
chooses from (``mlp``, ``cnn``), ``common.py`` the MLX mechanics the built-in families share.
Not under ``defs/``: Dagster's defs folder imports every module in it, and ``pyfunc_model`` is
MLflow models-from-code (it imports MLflow and calls ``set_model`` when imported)."""
