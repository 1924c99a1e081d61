"""The BentoML service that serves one registered MLX model version.

This package travels inside every bento (with ``efficientai_assets/models/mlp.py``): ``settings`` reads the
``serving.json`` written at build time, ``schemas`` turns it into strict request models, ``middleware``
guards the HTTP edge (size, media type, bearer token), ``service`` is the BentoML service and
``router`` splits traffic between a champion and a canary server. Only ``service`` imports bentoml.
"""
