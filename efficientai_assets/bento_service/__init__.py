"""The BentoML service that serves one registered MLX model version.

This package travels inside every bento (with the model families of
``efficientai_assets/models/``): ``settings`` reads the
``serving.json`` written at build time, ``schemas`` turns it into strict request models, ``middleware``
guards the HTTP edge (size, media type, bearer token, back-pressure), ``batching`` merges concurrent
requests behind a bounded queue, ``answers`` holds what every backend answers, ``service`` is the
BentoML service and ``router`` splits traffic between a champion and a canary server. Only the
``*service`` modules import bentoml.
"""
