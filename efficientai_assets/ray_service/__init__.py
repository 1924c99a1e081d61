"""The Ray Serve application that serves registered model versions exactly as their bentos do.

``spec`` holds the plain values an application is built from (no Ray import); ``app`` holds the
Ray Serve deployments — a gateway per project namespace (the bento's edge guard, strict schema,
size limit and messages, canary and shadow routing) and one model deployment per served version
(the MLX weights through the project's loader). The serving capability
(``efficientai_assets.defs.serving.ray_backend``) builds the spec from a deployment record.
"""
