"""Champion vs challenger as pure decisions: whether the challenger may be compared at all, and
whether it takes the champion seat. ``champion.py`` reads the registry and the validation split,
calls these, and moves the alias.

Before anything is loaded, each contender's origin is judged (``origin_refusal``): only versions
the pipeline itself produced take part — registered by a real run of ``candidate_model`` (or of
a sweep's configuration) in this store whose provenance tags agree with the version's, in the
project's own model flavour, with a signature. Anything else (a version planted in the registry)
is refused, never loaded.

The rules, in order: a challenger that failed (or never passed) its quality check is refused
outright; the champion is never "promoted" onto itself; a rolled-back version stays out until an
operator promotes it; an accuracy that is not a number is refused; a champion that takes other
input columns cannot be compared, so the champion stays until an operator promotes the challenger
(the accuracy comparison is never skipped by the pipeline itself); otherwise the challenger wins
unless it is worse on the current validation split (a tie goes to the challenger: it is the newer
model of the same quality).
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from efficientai_assets.defs.training.memo import MemoKey
from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
from efficientai_assets.names import (
    CANDIDATE_ASSET,
    CHALLENGER_ALIAS,
    QUALITY_PASSED,
    SWEEP_TRIALS_ASSET,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
)

# The candidate step's provenance: set alike on its MLflow run and on the version it registers.
PROVENANCE_TAGS = (
    TAG_DAGSTER_RUN_ID,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DATA_MD5,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_FINGERPRINT,
)
# The project's own flavour: a models-from-code pyfunc over MLX weights and config. The pipeline
# reads only those two files and loads them with its own code; the logged code never runs.
CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"
MODEL_CODE_FILE = "pyfunc_model.py"
MODEL_FILES = {"weights": f"artifacts/{WEIGHTS_FILENAME}", "config": f"artifacts/{CONFIG_FILENAME}"}


@dataclass(frozen=True)
class Origin:
    """Where the registry says a version came from, read without loading it: the version's tags,
    its run as this store knows it (``run_tags`` None: no such run), the run its model files name,
    its ``python_function`` flavour (None: none) and its signature's input columns (None: none)."""

    version: str
    version_tags: Mapping[str, str]
    run_id: str
    run_tags: Mapping[str, str] | None
    run_status: str
    model_run_id: str
    flavour: Mapping[str, object] | None
    input_columns: tuple[str, ...] | None


def origin_refusal(model_name: str, role: str, origin: Origin) -> str | None:
    """Why the pipeline refuses to load or promote this version (the ``role`` it holds), or None
    when the pipeline produced it. Checked before any of its files is read as a model."""
    problem = _origin_problem(origin)
    if problem is None:
        return None
    return (
        f"{model_name} version {origin.version} ({role}) is not a model this pipeline produced: "
        f"{problem}. The pipeline neither loads nor promotes it; delete that version, or point "
        f"the alias back at a version candidate_model registered (the deployment job's "
        "rollback), and run again"
    )


def _origin_problem(origin: Origin) -> str | None:
    tags, run_tags = origin.version_tags, origin.run_tags
    if not origin.run_id:
        return "it names no MLflow run"
    if run_tags is None:
        return f"its run {origin.run_id} does not exist in this MLflow store"
    for key in PROVENANCE_TAGS:
        if not tags.get(key) or tags.get(key) != run_tags.get(key):
            return (
                f"its tag {key}={tags.get(key)!r} does not match its run {origin.run_id} "
                f"({run_tags.get(key)!r})"
            )
    if not trained_by_pipeline(tags[TAG_DAGSTER_ASSET_KEY]):
        return (
            f"it was logged by {tags[TAG_DAGSTER_ASSET_KEY]!r}, not by {CANDIDATE_ASSET} "
            f"or a configuration of {SWEEP_TRIALS_ASSET}"
        )
    memo_key = MemoKey(tags[TAG_DATA_MD5], tags[TAG_CODE_VERSION], tags[TAG_CONFIG_HASH])
    if memo_key.fingerprint != tags[TAG_FINGERPRINT]:
        return f"its {TAG_FINGERPRINT} is not the fingerprint of its data, code and config tags"
    if origin.run_status != "FINISHED":
        return f"its run {origin.run_id} is {origin.run_status}, not FINISHED"
    if origin.model_run_id != origin.run_id:
        return f"its model files were logged by run {origin.model_run_id!r}, not {origin.run_id}"
    flavour = origin.flavour
    if flavour is None:
        return "it has no python_function flavour"
    artifacts = flavour.get("artifacts")
    paths = (
        {name: str(spec.get("path")) for name, spec in artifacts.items() if isinstance(spec, dict)}
        if isinstance(artifacts, dict)
        else {}
    )
    code_file = posixpath.basename(str(flavour.get("model_code_path") or "").replace("\\", "/"))
    if flavour.get("loader_module") != CODE_MODEL_LOADER or code_file != MODEL_CODE_FILE:
        return "it is not in the project's own model flavour (an MLX model logged as code)"
    if paths != MODEL_FILES:
        return f"its model files are {paths}, not the project's {MODEL_FILES}"
    if origin.input_columns is None:
        return "it has no signature, so its input columns are unknown"
    return None


def trained_by_pipeline(asset_key: str) -> bool:
    """The steps that train versions: ``candidate_model``, or one configuration of a sweep
    (``sweep_trials[<key>]``, the step's own key so parallel configurations stay apart)."""
    return asset_key == CANDIDATE_ASSET or (
        asset_key.startswith(f"{SWEEP_TRIALS_ASSET}[") and asset_key.endswith("]")
    )


@dataclass(frozen=True)
class Contender:
    """A registered version in the contest: its number, quality tag and rollback mark."""

    version: str
    quality: str | None = None
    rolled_back: str | None = None

    @classmethod
    def from_tags(cls, version: str, tags: Mapping[str, str]) -> Contender:
        return cls(str(version), tags.get(TAG_QUALITY), tags.get(TAG_ROLLED_BACK) or None)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger takes the seat, why, and who holds the seat afterwards."""

    promoted: bool
    reason: str
    seat: str
    seat_accuracy: float


def challenger_refusal(model_name: str, challenger: Contender | None) -> str | None:
    """Why ``champion_model`` fails before evaluating anything, or None when it may compare.

    Failing (not just "not promoting") keeps a blocked challenger visible in the run's status.
    """
    if challenger is None:
        return f"{model_name} has no '{CHALLENGER_ALIAS}' version: materialize candidate_model"
    if challenger.quality != QUALITY_PASSED:
        return (
            f"{model_name} version {challenger.version} failed its quality check "
            f"({TAG_QUALITY}={challenger.quality!r}); the champion stays"
        )
    return None


def decide_promotion(
    challenger: Contender,
    champion: Contender | None,
    challenger_accuracy: float,
    champion_accuracy: float | None,
    comparable: bool,
) -> PromotionDecision:
    """The contest on the current validation split. ``champion_accuracy`` is None when there is
    no champion or it takes other input columns (``comparable`` False)."""
    if champion is not None and champion.version == challenger.version:
        promoted, reason = False, f"version {challenger.version} is already the champion"
    elif challenger.rolled_back:
        promoted = False
        reason = (
            f"challenger v{challenger.version} was rolled back ({challenger.rolled_back});"
            " the pipeline does not promote it again — change the data or config, or promote it "
            "explicitly with the deployment asset (action: promote)"
        )
    elif not math.isfinite(challenger_accuracy):
        promoted = False
        reason = (
            f"challenger v{challenger.version} has accuracy {challenger_accuracy} on the current "
            "validation split, not a number to promote on: check the validation split "
            "(materialize dataset_splits) and the model's predictions"
        )
    elif champion is not None and not comparable:
        promoted = False
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) takes other input "
            f"columns than champion v{champion.version}: not comparable on this validation "
            "split, and the pipeline never promotes without the comparison; the champion stays. "
            "If the challenger should take the seat, promote it explicitly with the deployment "
            "asset (action: promote, with a reason)"
        )
    elif champion_accuracy is not None and challenger_accuracy < champion_accuracy:
        promoted = False
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is worse than "
            f"champion v{champion.version if champion else '-'} ({champion_accuracy:.4f})"
        )
    else:
        promoted = True
        reason = (
            f"challenger v{challenger.version} ({challenger_accuracy:.4f}) is not worse than "
            + (
                f"champion v{champion.version} ({champion_accuracy:.4f})"
                if champion is not None and champion_accuracy is not None
                else "an empty seat"
            )
        )
    seat = challenger if promoted or champion is None else champion
    return PromotionDecision(
        promoted=promoted,
        reason=reason,
        seat=seat.version,
        seat_accuracy=challenger_accuracy if promoted else (champion_accuracy or 0.0),
    )
