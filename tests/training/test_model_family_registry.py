"""The family registry and the training config's family fields, as plain values: an unknown family
names the known ones, the default MLP keeps the fingerprint it had before families existed, and a
family refuses data or parameters it cannot train before any training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from efficientai_assets.defs.training.config import TrainingConfig
from efficientai_assets.defs.training.memo import MemoKey
from efficientai_assets.models import cnn, mlp
from efficientai_assets.models.families import (
    FAMILIES,
    FamilyName,
    UnknownModelFamily,
    code_files,
    get_family,
    load_classifier_dir,
)
from efficientai_assets.models.family import TrainingParams, family_name_of
from efficientai_assets.provenance import stable_hash


def params(**overrides: object) -> TrainingParams:
    base: dict[str, object] = {
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 1e-3,
        "hidden_units": (16,),
        "seed": 0,
    }
    return TrainingParams(**{**base, **overrides})  # type: ignore[arg-type]


def test_the_config_offers_exactly_the_registered_families() -> None:
    assert set(get_args(FamilyName)) == set(FAMILIES) == {"mlp", "cnn"}
    for name, family in FAMILIES.items():
        assert family.name == name


def test_an_unknown_family_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelFamily, match=r"'transformer'.*'mlp', 'cnn'"):
        get_family("transformer")
    with pytest.raises(ValidationError, match=r"(?s)model_family.*'mlp' or 'cnn'"):
        TrainingConfig(model_family="transformer")  # type: ignore[arg-type]


def test_the_default_mlp_keeps_its_fingerprint_and_another_family_changes_it() -> None:
    before_families = {
        "epochs": 20,
        "batch_size": 0,
        "learning_rate": 1e-3,
        "hidden_units": [256, 128],
        "seed": 0,
    }
    assert TrainingConfig().training_fingerprint_fields() == before_families
    assert TrainingConfig(model_family="mlp", conv_channels=[64]).training_fingerprint_fields() == (
        before_families
    )
    key = MemoKey.for_training("md5", "1", TrainingConfig().training_fingerprint_fields())
    assert key.config_hash == stable_hash(before_families)

    cnn_fields = TrainingConfig(model_family="cnn").training_fingerprint_fields()
    assert cnn_fields == {**before_families, "model_family": "cnn", "conv_channels": [16, 32]}
    wider = TrainingConfig(model_family="cnn", conv_channels=[32, 64])
    assert stable_hash(wider.training_fingerprint_fields()) != stable_hash(cnn_fields)


@pytest.mark.parametrize("channels", [[0, 16], [16, 513], []])
def test_conv_channels_out_of_range_are_a_config_error(channels: list[int]) -> None:
    with pytest.raises(ValidationError, match="conv_channels"):
        TrainingConfig(model_family="cnn", conv_channels=channels)


def test_the_cnn_refuses_columns_that_are_not_a_square_image() -> None:
    family = get_family("cnn")
    family.check(params(family="cnn"), 64)
    with pytest.raises(ValueError, match=r"30 feature columns are not a square.*'mlp'"):
        family.check(params(family="cnn"), 30)
    with pytest.raises(ValueError, match="conv_channels"):
        family.check(params(family="cnn", conv_channels=()), 64)
    assert cnn.image_side(64) == 8 and cnn.image_side(784) == 28


def test_a_config_json_names_its_family_and_an_old_one_is_an_mlp() -> None:
    assert family_name_of(json.dumps({"family": "cnn"})) == "cnn"
    assert family_name_of(json.dumps({"feature_names": ["a"]})) == "mlp"
    config = cnn.CNNConfig(
        feature_names=tuple(f"p{i}" for i in range(4)),
        classes=(0, 1),
        image_side=2,
        conv_channels=(4,),
        hidden_units=(8,),
        feature_mean=(0.0,) * 4,
        feature_std=(1.0,) * 4,
    )
    assert cnn.CNNConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match=r"'cnn' model, not an MLP.*load_classifier"):
        mlp.MLPConfig.from_json(config.to_json())


def test_a_saved_model_of_any_family_loads_by_its_config(tmp_path: Path) -> None:
    """Both families trained for one epoch, saved, and loaded back by the one loader; a config
    without a family (saved before families existed) still loads as an MLP."""
    import numpy as np

    from efficientai_assets.models.family import save

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    names = [f"p{i}" for i in range(16)]
    for name in ("mlp", "cnn"):
        family = get_family(name)
        outcome, model = family.train(x, y, x, y, names, params(family=name, conv_channels=(4,)))
        folder = tmp_path / name
        save(model, outcome.config, folder)
        loaded = load_classifier_dir(folder)
        assert type(loaded.config) is type(outcome.config)
        assert loaded.predict(x).shape == (64,)
        np.testing.assert_allclose(loaded.predict_proba(x).sum(axis=1), 1.0, rtol=1e-5)
    legacy = json.loads((tmp_path / "mlp" / "config.json").read_text())
    del legacy["family"]
    (tmp_path / "mlp" / "config.json").write_text(json.dumps(legacy))
    assert isinstance(load_classifier_dir(tmp_path / "mlp").config, mlp.MLPConfig)
    assert isinstance(mlp.MLXClassifier.load_dir(tmp_path / "mlp").config, mlp.MLPConfig)


def test_a_bento_and_an_mlflow_model_carry_every_family_module() -> None:
    names = {path.name for path in code_files()}
    assert {"family.py", "common.py", "families.py", "mlp.py", "cnn.py"} <= names
    assert "pyfunc_model.py" not in names and "__init__.py" not in names
