"""Ray and Ray Serve as a tool: a local head node's lifecycle, connecting to a cluster, and running
Serve applications. Knows Ray, not the project (nothing here imports ``efficientai_assets``)."""
