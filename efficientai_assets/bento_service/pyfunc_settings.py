"""What a bento serving an MLflow model carries besides the model: ``pyfunc_serving.json``.

Written at build time from the model's MLflow signature, read by ``pyfunc_service`` at serve time:
the model's identity and provenance, the request limits, whether loading it needs pickle, and the
input schema the strict request model is made from. Two input kinds are servable:

- ``columns`` (a column-based signature): ``{"instances": [{"<column>": value, ...}, ...]}`` with
  each column's declared type (double/float: finite numbers; long/integer: integers in range;
  boolean; string), required columns required and no other key;
- ``tensor`` (one tensor of shape ``(-1,)`` or ``(-1, n)``): ``{"instances": [x, ...]}`` or
  ``{"instances": [[x1, ..., xn], ...]}`` of finite numbers.

Anything else is refused at build time, naming what the signature declares. Pure Python (pydantic
and annotated-types at most): importing it needs neither bentoml nor mlflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

PYFUNC_SETTINGS_FILENAME = "pyfunc_serving.json"
PYFUNC_SETTINGS_ENV = "EFFICIENTAI_PYFUNC_SETTINGS"
PICKLE_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"

# MLflow column type -> (JSON kind, numpy dtype, integer bounds)
COLUMN_TYPES: Mapping[str, tuple[str, str, tuple[int, int] | None]] = {
    "double": ("number", "float64", None),
    "float": ("number", "float32", None),
    "long": ("integer", "int64", (-(2**63), 2**63 - 1)),
    "integer": ("integer", "int32", (-(2**31), 2**31 - 1)),
    "boolean": ("boolean", "bool", None),
    "string": ("string", "object", None),
}
TENSOR_DTYPES = frozenset(
    {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16"}
)
MAX_STRING_CHARS = 100_000


class SchemaError(ValueError):
    """The model's signature declares inputs this service cannot take strictly."""


def pickle_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user opted in to pickle loading through MLflow's own switch."""
    value = (os.environ if environ is None else environ).get(PICKLE_ENV, "")
    return value.strip().lower() in ("true", "1")


@dataclass(frozen=True)
class InputColumn:
    name: str
    type: str
    required: bool = True


@dataclass(frozen=True)
class InputSpec:
    """The request schema, from the model's signature."""

    kind: str  # "columns" or "tensor"
    columns: tuple[InputColumn, ...] = ()
    dtype: str = ""
    width: int | None = None  # tensor (-1, n): n; tensor (-1,): None

    @classmethod
    def from_signature_inputs(cls, inputs: Sequence[Mapping[str, Any]]) -> InputSpec:
        """From ``ModelSignature.inputs.to_dict()``; raises ``SchemaError`` naming what it cannot
        serve strictly."""
        if not inputs:
            raise SchemaError("the signature declares no inputs")
        if all(spec.get("type") == "tensor" for spec in inputs):
            if len(inputs) != 1:
                raise SchemaError(f"the signature declares {len(inputs)} tensors; one is servable")
            tensor = inputs[0].get("tensor-spec") or {}
            dtype, shape = str(tensor.get("dtype")), list(tensor.get("shape") or [])
            if dtype not in TENSOR_DTYPES:
                raise SchemaError(f"tensor dtype {dtype!r} is not one of {sorted(TENSOR_DTYPES)}")
            if not shape or shape[0] != -1 or len(shape) > 2 or any(d < 1 for d in shape[1:]):
                raise SchemaError(f"tensor shape {shape} is not (-1,) or (-1, n)")
            return cls("tensor", dtype=dtype, width=int(shape[1]) if len(shape) == 2 else None)
        columns = []
        for spec in inputs:
            name, kind = spec.get("name"), spec.get("type")
            if not isinstance(name, str) or not name:
                raise SchemaError("the signature has an unnamed column; name every input column")
            if kind not in COLUMN_TYPES:
                raise SchemaError(
                    f"input column {name!r} has type {kind!r}; servable types: "
                    f"{sorted(COLUMN_TYPES)}"
                )
            columns.append(InputColumn(name, str(kind), bool(spec.get("required", True))))
        if len({c.name for c in columns}) != len(columns):
            raise SchemaError("the signature names an input column twice")
        return cls("columns", columns=tuple(columns))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> InputSpec:
        columns = tuple(InputColumn(**column) for column in raw.get("columns", ()))
        return cls(str(raw["kind"]), columns, str(raw.get("dtype", "")), raw.get("width"))

    def describe(self) -> str:
        """What one instance looks like, for the bento's README and errors."""
        if self.kind == "tensor":
            return f"{self.width} numbers" if self.width else "a number"
        fields = ", ".join(f'"{c.name}": {c.type}' for c in self.columns[:8])
        more = ", ..." if len(self.columns) > 8 else ""
        return f"{{{fields}{more}}}"

    def request_model(self, max_rows: int) -> type[Any]:
        """The strict pydantic model of ``{"instances": [...]}``, at most ``max_rows`` rows."""
        from annotated_types import Len
        from pydantic import ConfigDict, Field, create_model

        finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
        if self.kind == "tensor":
            row: Any = finite if self.width is None else Annotated[
                list[finite], Len(self.width, self.width)
            ]  # fmt: skip
        else:
            fields: dict[str, Any] = {}
            for index, column in enumerate(self.columns):
                kind, _, bounds = COLUMN_TYPES[column.type]
                annotation: Any = {
                    "number": finite,
                    "integer": Annotated[int, Field(strict=True, ge=bounds[0], le=bounds[1])]
                    if bounds
                    else int,
                    "boolean": Annotated[bool, Field(strict=True)],
                    "string": Annotated[str, Field(strict=True, max_length=MAX_STRING_CHARS)],
                }[kind]
                default: Any = ... if column.required else None
                if not column.required:
                    annotation = annotation | None
                fields[f"c{index}"] = (annotation, Field(default, alias=column.name))
            row = create_model(
                "Instance", __config__=ConfigDict(extra="forbid", strict=True), **fields
            )
        return create_model(
            "PredictRequest",
            __config__=ConfigDict(extra="forbid", strict=True),
            instances=(
                Annotated[list[row], Len(1, max_rows)],
                Field(description=f"Between 1 and {max_rows} instances of {self.describe()}."),
            ),
        )


@dataclass(frozen=True)
class PyfuncSettings:
    """Everything the pyfunc service needs before it loads the model."""

    bento_model_tag: str
    model_name: str
    model_version: str
    data_md5: str
    git_sha: str
    input: InputSpec
    model_framework: str = "mlflow"
    pickle_reason: str | None = None  # why loading needs pickle; None: it does not
    max_rows: int = 512
    max_body_bytes: int = 1_000_000
    token_env: str = "EFFICIENTAI_SERVE_TOKEN"
    source: str = ""  # the path or URI the model was packaged from

    def labels(self) -> dict[str, str]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "data_md5": self.data_md5,
            "git_sha": self.git_sha,
        }

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> PyfuncSettings:
        values = dict(raw)
        values["input"] = InputSpec.from_json(values["input"])
        return cls(**values)

    def with_env(self, environ: Mapping[str, str]) -> PyfuncSettings:
        """The serve-time overrides the MLX service takes too (rows, body size, token variable)."""
        changes: dict[str, Any] = {}
        for variable, name in (
            ("EFFICIENTAI_SERVE_MAX_ROWS", "max_rows"),
            ("EFFICIENTAI_SERVE_MAX_BODY_BYTES", "max_body_bytes"),
        ):
            if environ.get(variable):
                try:
                    changes[name] = int(environ[variable])
                except ValueError as error:
                    raise SchemaError(f"{variable} must be an integer") from error
        if environ.get("EFFICIENTAI_SERVE_TOKEN_ENV"):
            changes["token_env"] = environ["EFFICIENTAI_SERVE_TOKEN_ENV"]
        return replace(self, **changes) if changes else self


def load_pyfunc_settings(path: Path | None = None) -> PyfuncSettings:
    """The settings of the bento this code runs in, with environment overrides applied."""
    configured = os.environ.get(PYFUNC_SETTINGS_ENV)
    path = path or (Path(configured) if configured else Path(__file__).with_name(
        PYFUNC_SETTINGS_FILENAME
    ))  # fmt: skip
    raw = json.loads(path.read_text())
    return PyfuncSettings.from_mapping(raw).with_env(os.environ)
