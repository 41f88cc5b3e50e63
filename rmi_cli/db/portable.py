"""The portable results file (`rmi db export` writes it, `rmi db merge` reads it): one
experiment's runs with everything stored about them, as JSON.

Why JSON and not a small SQLite file: a results file travels between databases of different
schema revisions and dialects, so it has its own small, versioned format that is validated field
by field on the way in (pydantic; a bad file is refused in one line naming the file and the
field) instead of a database whose schema `merge` would have to trust; it is plain text that a
person can read and diff, and writing it needs nothing but a file. Field names are the database
columns'; rows refer to each other by content (a run by its config hash, an environment by its
fingerprint hash), never by a database id.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rmi_cli.atomic import atomic_write_bytes
from rmi_cli.db.evidence import check_blob
from rmi_cli.errors import UserError

FORMAT = "rmi-results"
VERSION = 1


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassRow(Row):
    class_index: int
    class_name: str
    iou: float | None
    boundary_iou: float | None = None  # revision 0004; absent from older files


class CountsRow(Row):
    """An evaluation's per-image counts: the `image_counts` row, its blob in base64 (checked
    on the way in, so a damaged file is refused before anything is merged)."""

    num_images: int
    num_classes: int
    names_json: list[str]
    encoding: str
    counts: str  # base64 of the stored blob (`rmi_cli.db.evidence`)
    boundary_fraction: float

    @model_validator(mode="after")
    def _blob_fits(self) -> CountsRow:
        check_blob(self.blob(), self.encoding, self.num_images, self.num_classes)
        if len(self.names_json) != self.num_images:
            raise ValueError(f"{len(self.names_json)} image names for {self.num_images} images")
        return self

    def blob(self) -> bytes:
        try:
            return base64.b64decode(self.counts, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"counts are not base64 ({exc})") from None

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> CountsRow:
        return cls(**values | {"counts": base64.b64encode(values["counts"]).decode("ascii")})

    def stored(self) -> dict[str, Any]:
        """The `image_counts` columns (all but the evaluation's id)."""
        return self.model_dump() | {"counts": self.blob()}


class EvaluationRow(Row):
    split: str
    postprocess: str
    miou: float
    pixel_accuracy: float
    mean_accuracy: float
    num_images: int
    excluded_classes_json: list[str]
    confusion_json: list[list[int]]
    inference_median_ms: float | None = None
    inference_p90_ms: float | None = None
    inference_mean_ms: float | None = None
    timing_protocol_json: dict[str, Any] | None = None
    crf_median_ms: float | None = None
    crf_p90_ms: float | None = None
    crf_workers: int | None = None
    crf_params_json: dict[str, Any] | None = None
    total_median_ms: float | None = None
    peak_eval_memory_mb: float | None = None
    probs_dir: str | None = None
    boundary_miou: float | None = None  # revision 0004; absent from older files
    created_at: datetime
    environment: str  # fingerprint hash
    classes: list[ClassRow]
    image_counts: CountsRow | None = None


class TrainRow(Row):
    checkpoint_path: str
    iterations: int
    final_loss: float
    train_time_s: float
    images_per_s: float
    peak_train_memory_mb: float | None
    rmi_fallbacks: int
    resumed_from: int | None
    world_size: int = 1
    batch_per_rank: int | None = None
    created_at: datetime
    environment: str


class MetricRow(Row):
    iteration: int
    loss: float
    lr: float
    images_per_s: float
    elapsed_s: float
    rmi_fallbacks: int
    extra_json: dict[str, float]
    recorded_at: datetime


class RunRow(Row):
    kind: Literal["train", "crf"]
    config_hash: str
    config_json: dict[str, Any]
    depends_on: str | None  # the config hash of the run it needs
    status: Literal["queued", "running", "done", "failed"]
    priority: int
    attempts: int
    max_attempts: int
    worker: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    checkpoint_path: str | None
    workdir: str | None
    environment: str | None
    train: TrainRow | None
    metrics: list[MetricRow]
    evaluations: list[EvaluationRow]

    def results(self) -> dict[str, Any]:
        """What a run computed (compared when two databases both hold it)."""
        return self.model_dump(mode="json", include={"train", "evaluations"})


class MemberRow(Row):
    name: str
    run: str  # config hash
    method: str
    group_label: str
    params_json: dict[str, Any]
    position: int


class ExperimentRow(Row):
    name: str
    description: str
    manifest_path: str | None
    tables_json: list[Any] | None
    created_at: datetime
    members: list[MemberRow]


class ResultsFile(Row):
    """The whole file."""

    format: Literal["rmi-results"]
    version: Literal[1]
    exported_at: datetime
    source: str  # the database it came from (password hidden)
    schema_revision: str | None
    experiments: list[ExperimentRow]
    environments: dict[str, dict[str, Any]]  # fingerprint hash -> `records.Fingerprint` fields
    runs: list[RunRow]  # every run a member needs, a run after the one it depends on


def write_results(document: ResultsFile, path: Path) -> None:
    """Write atomically: a reader (or a copy in progress) never sees half a file."""
    text = json.dumps(document.model_dump(mode="json"), indent=1, sort_keys=True)
    atomic_write_bytes(path, (text + "\n").encode())


def read_results(path: Path) -> ResultsFile:
    """Read and validate a results file; a `UserError` naming the file and what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the results file ({exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not a results file: invalid JSON at line {exc.lineno}, column "
            f"{exc.colno} ({exc.msg}); write it again with `rmi db export`"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise UserError(
            f'{path}: not a results file: expected "format": "{FORMAT}", found {found!r}; '
            f"write one with `rmi db export -e EXPERIMENT -o FILE`"
        )
    if raw.get("version") != VERSION:
        raise UserError(
            f"{path}: results file version {raw.get('version')!r}; this rmi reads version "
            f"{VERSION}: merge it with the rmi version that exported it, or export it again"
        )
    try:
        return ResultsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        found = repr(first.get("input"))[:60]
        raise UserError(
            f"{path}: field {where}: {first['msg']} (found {found}); the file is damaged or "
            f"was edited: export it again with `rmi db export`"
        ) from None
