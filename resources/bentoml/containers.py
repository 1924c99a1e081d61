"""Container images of bentos: BentoML's own Dockerfile, and an image only where an engine runs.

``bentoml.container.get_containerfile`` writes the Dockerfile ``bentoml containerize`` would build
with; ``bentoml.container.health`` says whether the builder (Docker by default) is reachable. So a
request for a container always yields the Dockerfile, and says plainly when no image was built
because no engine is there. BentoML runs in a child process on the store's home, like every other
store operation (see ``store``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoStoreError, bento_name_for, output_tail

_CONTAINER_SCRIPT = """
import json, sys
import bentoml
spec = json.loads(sys.argv[1])
bentoml.container.get_containerfile(spec["tag"], output_path=spec["dockerfile"])
healthy = False
try:
    healthy = bool(bentoml.container.health(spec["backend"]))
except Exception as error:
    print(json.dumps({"healthy": False, "why": f"{type(error).__name__}: {error}"}))
    raise SystemExit(0)
image = None
if healthy and spec["build"]:
    bentoml.container.build(spec["tag"], backend=spec["backend"], image_tag=(spec["image"],))
    image = spec["image"]
print(json.dumps({"healthy": healthy, "image": image}))
"""


@dataclass(frozen=True)
class ContainerResult:
    """The Dockerfile written, and the image built (None, with the reason, when none was)."""

    dockerfile: Path
    image_tag: str | None
    engine_available: bool
    message: str


def containerize(
    store: BentoMLResource,
    tag: str,
    output_dir: Path,
    build_image: bool = True,
    backend: str = "docker",
) -> ContainerResult:
    """Write BentoML's Dockerfile of bento ``tag`` into ``output_dir``; build the image with
    ``backend`` when asked and an engine answers, else say why not."""
    output_dir.mkdir(parents=True, exist_ok=True)
    name, _, version = tag.partition(":")
    dockerfile = output_dir / f"{bento_name_for(name)}-{version}.dockerfile"
    image = f"{bento_name_for(name)}:{version}"
    spec = {
        "tag": tag,
        "dockerfile": str(dockerfile),
        "backend": backend,
        "build": build_image,
        "image": image,
    }
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _CONTAINER_SCRIPT, json.dumps(spec)],
            cwd=store.resolved_home(),
            env=store.environment(),
            capture_output=True,
            text=True,
            timeout=store.command_timeout_seconds,
        )
    except subprocess.TimeoutExpired as error:
        raise BentoStoreError(
            f"containerizing {tag} timed out after {store.command_timeout_seconds}s"
        ) from error
    if completed.returncode != 0 or not dockerfile.is_file():
        raise BentoStoreError(
            f"containerizing {tag} failed ({completed.returncode}):\n"
            + output_tail(completed.stderr or completed.stdout)
        )
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    healthy = bool(outcome.get("healthy"))
    built = outcome.get("image")
    if built:
        message = f"image {built} built with {backend}"
    elif not healthy:
        why = f" ({outcome['why']})" if outcome.get("why") else ""
        message = (
            f"no image was built: no {backend} engine is reachable on this machine{why}. The "
            f"Dockerfile is at {dockerfile}; run `bentoml containerize {tag}` (BENTOML_HOME="
            f"{store.resolved_home()}) where {backend} runs"
        )
    else:
        message = f"no image was built (not asked); the Dockerfile is at {dockerfile}"
    return ContainerResult(dockerfile, built, healthy, message)
