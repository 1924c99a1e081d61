"""Strict request and response models, sized from the served model's settings.

BentoML's default parsing accepts NaN, Infinity, numeric strings and booleans as floats and ignores
unknown fields; these models refuse all of them. JSON numbers that overflow a double (``1e400``)
parse as infinity and are refused as non-finite. The model computes in float32, where anything
beyond ±3.4e38 is infinite: ``1e39`` is a finite double that would turn into NaN probabilities, so
it is refused too, with the index of the offending value (``loc``: ``instances``, row, feature).
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Len
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    create_model,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# The largest finite float32 (numpy.finfo(numpy.float32).max), spelled out to keep numpy out.
FLOAT32_MAX = 3.4028234663852886e38

FLOAT32_RANGE_MESSAGE = (
    f"Input should be a number float32 can hold (magnitude at most {FLOAT32_MAX!r}): "
    "the model computes in float32"
)


class Float32Number:
    """A strict, finite JSON number that float32 can hold.

    Two steps, both in pydantic-core: the usual strict finite-float check (its own messages for
    strings, booleans, NaN, Infinity), then the float32 range with a message that says why.
    """

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.float_schema(strict=True, allow_inf_nan=False),
                core_schema.custom_error_schema(
                    core_schema.float_schema(ge=-FLOAT32_MAX, le=FLOAT32_MAX),
                    custom_error_type="float32_range",
                    custom_error_message=FLOAT32_RANGE_MESSAGE,
                ),
            ]
        )

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}


FiniteFloat = Annotated[float, Float32Number()]


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
