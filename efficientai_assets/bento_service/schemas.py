"""Strict request and response models, sized from the served model's settings.

BentoML's default parsing accepts NaN, Infinity, numeric strings and booleans as floats and ignores
unknown fields; these models refuse all of them. JSON numbers that overflow a double (``1e400``)
parse as infinity and are refused as non-finite.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Len
from pydantic import BaseModel, ConfigDict, Field, create_model

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Prediction(BaseModel):
    """One row's answer: the predicted class and the probability of every class."""

    model_config = ConfigDict(extra="forbid")

    label: int
    probabilities: dict[str, float] = Field(
        description="Probability of each class, keyed by the class label."
    )


def make_request_model(n_features: int, max_rows: int) -> type[BaseModel]:
    """``{"instances": [[f1, ..., fn], ...]}`` with exactly ``n_features`` finite floats per row
    and between 1 and ``max_rows`` rows; any other field is refused."""
    if n_features < 1 or max_rows < 1:
        raise ValueError(f"n_features ({n_features}) and max_rows ({max_rows}) must be positive")
    row = Annotated[list[FiniteFloat], Len(n_features, n_features)]
    model: type[BaseModel] = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", strict=True),
        instances=(
            Annotated[list[row], Len(1, max_rows)],
            Field(
                description=f"Between 1 and {max_rows} rows of exactly {n_features} finite numbers."
            ),
        ),
    )
    return model
