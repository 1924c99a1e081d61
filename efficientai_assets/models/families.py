"""The registry of model families: the ``model_family`` run-config value → the family that trains,
saves and loads it, and the one loader for a saved model of any family (``config.json`` names it).

Adding a family: write its module (``family.ModelFamily``; ``cnn.py`` is the worked example),
add it to ``FAMILIES`` and its name to ``FamilyName`` — the run config offers exactly these names,
so an unknown one is refused when the run is launched, before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

try:  # inside the project
    from efficientai_assets.models import cnn, mlp
    from efficientai_assets.models.common import Classifier, load_network
    from efficientai_assets.models.family import (
        CONFIG_FILENAME,
        WEIGHTS_FILENAME,
        ModelFamily,
        family_name_of,
    )
except ImportError:  # inside an MLflow model: the model modules travel as top-level code paths
    import cnn  # type: ignore[no-redef]
    import mlp  # type: ignore[no-redef]
    from common import Classifier, load_network  # type: ignore[no-redef]
    from family import (  # type: ignore[no-redef]
        CONFIG_FILENAME,
        WEIGHTS_FILENAME,
        ModelFamily,
        family_name_of,
    )

# The names the run config accepts (a Literal becomes an enum in Dagster's config schema).
FamilyName = Literal["mlp", "cnn"]

FAMILIES: dict[str, ModelFamily] = {
    mlp.FAMILY.name: mlp.FAMILY,
    cnn.FAMILY.name: cnn.FAMILY,
}


class UnknownModelFamily(ValueError):
    """A name that no registered family answers to."""


def known_families() -> tuple[str, ...]:
    return tuple(FAMILIES)


def get_family(name: str) -> ModelFamily:
    """The family called ``name``, or an error naming the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UnknownModelFamily(
            f"unknown model family {name!r}: the known families are "
            f"{', '.join(repr(n) for n in FAMILIES)} (efficientai_assets/models/families.py)"
        ) from None


def load_classifier(weights_path: str | Path, config_path: str | Path) -> Classifier:
    """A saved model of any family: ``config.json`` names the family, which rebuilds the network;
    the safetensors weights are loaded strictly (no pickle)."""
    weights_path, config_path = Path(weights_path), Path(config_path)
    for path in (weights_path, config_path):
        if not path.is_file():
            raise FileNotFoundError(f"model file missing: {path}")
    text = config_path.read_text()
    family = get_family(family_name_of(text))
    config = family.config_from_json(text)
    return Classifier(load_network(family.build, config, str(weights_path)), config)


def load_classifier_dir(directory: str | Path) -> Classifier:
    """``load_classifier`` on a folder holding ``weights.safetensors`` and ``config.json``."""
    directory = Path(directory)
    return load_classifier(directory / WEIGHTS_FILENAME, directory / CONFIG_FILENAME)


def code_files() -> tuple[Path, ...]:
    """The modules a saved model needs to be loaded outside this tree — an MLflow model's code
    paths, a bento's copy of the package: every module here but the pyfunc wrapper itself."""
    here = Path(__file__).resolve().parent
    skip = {"__init__.py", "pyfunc_model.py"}
    return tuple(path for path in sorted(here.glob("*.py")) if path.name not in skip)
