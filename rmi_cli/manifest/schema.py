"""The structure of an experiments manifest (the run configurations inside are `RunConfig`).

```yaml
version: 1
defaults: {train: {iterations: 6000}}      # merged into every run of every experiment
experiments:
  camvid-table4:
    description: DeepLabv3 / v3+ on CamVid, CE vs BCE vs CE+CRF vs Affinity vs RMI
    defaults: {data: {name: camvid, root: "${CAMVID_ROOT}"}}
    runs:                                   # name -> overrides (+ optional label / group)
      ce:  {loss: {name: ce}}
      rmi: {loss: {name: rmi, pool: avg, pool_size: 4, radius: 3}}
    grid: {model.name: [deeplabv3, deeplabv3plus]}   # cartesian product (or a list of them)
    seeds: [0, 1, 2]
    crf: {on: ce, iters: [1, 5, 10]}
    tables: [{kind: per-class}]
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from rmi_cli.config import CRFConfig, Strict
from rmi_cli.report.kinds import TableKind

# Keys of a run entry that label it for tables instead of configuring it.
RUN_META_KEYS = ("label", "group")


class CRFStepSpec(CRFConfig):
    """Dense-CRF post-processing scheduled after the runs of one entry of `runs`."""

    on: str = Field(description="the name of the entry in `runs` whose runs it post-processes")
    split: str | None = Field(None, description="default: the run's data.eval_split")


class TableSpec(Strict):
    """A table `rmi table` renders for the experiment by default."""

    kind: TableKind
    split: str | None = None
    rows: str | None = Field(None, description="ablation: the params key of the rows")
    cols: str | None = Field(None, description="ablation: the params key of the columns")
    baseline: str | None = Field(None, description="the method the delta column compares with")
    title: str | None = None


class ExperimentSpec(Strict):
    """One named experiment: runs x grid x seeds, plus CRF steps and the tables it feeds.

    With `extends: other`, the experiment starts from `other` (which may extend another): its
    own `defaults` merge over the parent's, and any other field it gives replaces the parent's.
    """

    extends: str | None = Field(None, description="an experiment of this manifest to start from")
    description: str = ""
    defaults: dict[str, Any] = Field(default_factory=dict)
    runs: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | list[dict[str, list[Any]]] = Field(default_factory=dict)
    seeds: list[int] | None = None
    crf: CRFStepSpec | list[CRFStepSpec] | None = None
    tables: list[TableSpec] = Field(default_factory=list)

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(
        cls, grid: dict[str, list[Any]] | list[dict[str, list[Any]]]
    ) -> dict[str, list[Any]] | list[dict[str, list[Any]]]:
        for axes in grid if isinstance(grid, list) else [grid]:
            for key, values in axes.items():
                if not values:
                    raise ValueError(f"grid axis {key!r} has no values; give at least one")
        return grid

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
            raise ValueError(f"seeds must be a non-empty list of distinct integers; found {seeds}")
        return seeds

    def crf_steps(self) -> list[CRFStepSpec]:
        if self.crf is None:
            return []
        return self.crf if isinstance(self.crf, list) else [self.crf]

    def grids(self) -> list[dict[str, list[Any]]]:
        return self.grid if isinstance(self.grid, list) else [self.grid]


class ManifestSpec(Strict):
    """A whole manifest file."""

    version: Literal[1] = 1
    defaults: dict[str, Any] = Field(default_factory=dict)
    experiments: dict[str, ExperimentSpec]
