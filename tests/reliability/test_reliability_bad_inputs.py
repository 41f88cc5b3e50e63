"""The bad-input corpus: broken manifests, impossible options, broken datasets, foreign
checkpoints, unusable databases and bad arguments, each given to a real `rmi` process.

Each case must exit non-zero (2: bad usage or input; 1: a run that failed) with one clear
`error:` line naming the file or field, what was expected and what was found, and no traceback.
The database is hashed before and after: untouched, except for errors that only show while a job
runs (bad labels, a corrupt image...), where the job is failed with the error stored, not retried.

Placeholders: `@DB@` in a case's arguments is its database; `@ROOT@` in a job case's run is
its dataset folder; `@PATH@` and `@FOLDER@` in a case's words are the database's path and folder.
Every case belongs to a class by the prefix of its id (`CLASSES`); docs/reliability.md counts
them (tests/reliability/test_reliability_docs.py keeps the counts true).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from reliability_kit import (
    Result,
    drop_file_capabilities,
    file_hash,
    manifest,
    query,
    remove_run_folders,
    rmi,
    runs_table,
    write_folder_dataset,
    write_png,
)

GOOD = manifest({"ce": "{loss: {name: ce}}"})
FOLDER_RUN = '{loss: {name: ce}, data: {name: folder, root: "@ROOT@", crop_size: 16}}'
# A folder dataset in the workspace (written by a set-up), read by a local worker.
LOCAL_FOLDER = manifest(
    {"r": "{loss: {name: ce}, data: {name: folder, root: data, crop_size: 16}}"}
)


def tiny(run: str, *, name: str = "tiny") -> str:
    """The good manifest's experiment with one run `r` of body `run`."""
    return manifest({"r": run}, name=name)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...]  # must all appear in the error line
    code: int = 2
    files: dict[str, str] = field(default_factory=dict)  # path -> text, written first
    setup: str | None = None  # a function of SETUPS, run after the files are written
    db: str = "rmi.db"  # the database under test (a copy of the template unless set up)
    no_file_caps: bool = False  # run as a root without CAP_DAC_OVERRIDE (read-only files)


def ablate(*extra: str, manifest_file: str = "m.yaml", experiment: str = "tiny") -> tuple[str, ...]:
    return ("ablate", manifest_file, "-e", experiment, "--workers", "0", "--db", "@DB@", *extra)


def local(*extra: str) -> tuple[str, ...]:
    """`rmi ablate` with a local worker: the data is opened (and refused) before queueing."""
    return ("ablate", "m.yaml", "-e", "tiny", "--workers", "1", "--db", "@DB@", *extra)


def with_grid(run: str, grid: str) -> str:
    return tiny(run) + f"    grid: {grid}\n"


def alias_bomb(levels: int = 9, fanout: int = 10) -> str:
    """~600 bytes that expand to fanout ** levels values (nested anchors, a "billion laughs")."""
    lines = ["version: 1", "l0: &l0 [" + ", ".join(["x"] * fanout) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fanout) + "]")
    return "\n".join(lines) + f"\nexperiments: {{tiny: {{grid: {{train.lr: *l{levels - 1}}}}}}}\n"


# The classes of bad input, by the prefix of a case's id (docs/reliability.md counts them):
# prefix -> (class, what its cases cover).
CLASSES = {
    "yaml": ("Manifests that do not parse",
             "syntax errors, tabs, an empty file, a list at the top, duplicate keys, a Python "
             "object tag (never run), a missing file"),
    "bomb": ("YAML that explodes when built",
             "alias bombs, 500 nested brackets, an alias inside its own anchor: in a manifest, "
             "a --set value and classes.yaml; refused from the event stream in about a second"),
    "key": ("Unknown keys, names and types",
            "misspelt keys, unknown losses, backbones and experiments, words for numbers, "
            "--set without a value, loss options without the loss they belong to"),
    "value": ("Values out of range, or valid but impossible to run",
              "bounds of every loss and training option, infinite or NaN numbers, seeds beyond "
              "64 bits, scales and std that break the data pipeline"),
    "grid": ("Grids that collide or explode",
             "values that name one run twice (3 and \"3\"), runs that compute the same thing, a "
             "grid over an operational field, 100,000 runs"),
    "checkpoint": ("Checkpoints that are missing, foreign or unsafe",
                   "another model's weights, a plain state dict, a text file, a pickle that "
                   "runs code, a file outside a run folder, a run not trained yet"),
    "db": ("Databases that are wrong, newer, damaged or not writable",
           "a newer schema, a text file, a damaged header, a page overwritten by dd (met by "
           "seven commands), a folder, a missing file or folder, read-only files and folders"),
    "local": ("Data or run folders this machine cannot use, refused before queueing",
              "a missing root, an empty split list, duplicate or empty class names, an unknown "
              "split for the CRF, a weights variable unset here; a --runs-dir that is a file, "
              "under a file, on /proc, or read-only (ablate, worker, train, crf)"),
    "merge": ("Results files that cannot be merged or exported",
              "invalid JSON, not a results file, a newer version, a missing field or file, a run "
              "name whose configuration changed, a missing dependency; an unknown experiment to "
              "export"),
    "submit": ("Cluster submissions that cannot run",
               "an SQLite database (jobs on other nodes need a server), no partition, a time "
               "limit Slurm does not read, a batch that does not divide among the GPUs"),
    "state": ("Commands on runs in the wrong state",
              "rmi crf on a run that is queued or failed (it queued a job that waited or failed "
              "without a word), rmi train on a run a live worker holds"),
    "report": ("Tables, figures and reports of results that are not there",
               "an unknown metric or pick, curves before training, an ablation figure without a "
               "grid, a run or experiment not in the database, an output folder that is a file"),
    "cli": ("Bad command-line arguments",
            "unknown options and commands, malformed lists (1,x, 0, 1,,5, 0,,1), unknown formats "
            "and baselines, missing or contradictory arguments"),
}  # fmt: skip
# Prefixes counted in another prefix's class.
ALIASES = {"export": "merge", "table": "report", "figure": "report"}


def case_class(case_id: str) -> str:
    """The CLASSES key of a case, by the prefix of its id."""
    prefix = case_id.split("-")[0]
    return ALIASES.get(prefix, prefix)


JOB_CLASS = (
    "Bad data met by a running job",
    "a job on another machine meets it: failed at once with the error stored, not retried, "
    "while the other runs finish (labels out of range, sizes that differ, a corrupt or "
    "floating-point image, no class list or split, a split without a labelled pixel)",
)
R = {"files": {"m.yaml": GOOD}}  # the good manifest, for cases about something else
DAMAGED_PAGE = ("rmi.db: the database file is damaged (database disk image is malformed)",
                "rmi db upgrade keeps rmi.db.bak-* beside it; none here",
                "sqlite3 @PATH@ .recover | sqlite3 @FOLDER@/rmi-recovered.db")  # fmt: skip
MERGE = ("db", "merge", "r.json", "--db", "@DB@")
SUBMIT = ("submit", "m.yaml", "-e", "tiny", "--db", "@DB@")
EVAL = ("eval", "--checkpoint", "ck/checkpoints/last.pt", "--db", "@DB@")  # see _checkpoint

CASES = [
    # --- malformed YAML and unknown or mistyped keys ------------------------------------------
    Case("yaml-unclosed-flow", ablate(), ("m.yaml:4:", "not valid YAML", "fix the syntax"),
         files={"m.yaml": "version: 1\nexperiments:\n  tiny: {runs: [\n"}),
    Case("yaml-tab-indent", ablate(), ("m.yaml:2:", "not valid YAML", "cannot start any token"),
         files={"m.yaml": "version: 1\n\texperiments: {}\n"}),
    Case("yaml-empty-file", ablate(), ("m.yaml:1:", "expected a mapping", "found an empty file"),
         files={"m.yaml": ""}),
    Case("yaml-top-level-list", ablate(), ("m.yaml:1:", "expected a mapping", "found list"),
         files={"m.yaml": "- tiny\n- ce\n"}),
    Case("yaml-duplicate-key", ablate(),
         ("m.yaml:11:", "duplicate key 'experiments.tiny.runs.r'", "first on line 10"),
         files={"m.yaml": tiny("{loss: {name: ce}}") + "      r: {loss: {name: bce}}\n"}),
    # The safe loader does not construct Python objects: the tag is ignored, print never runs.
    Case("yaml-python-object-tag", ablate(),
         ("m.yaml:10:", "experiments.tiny.runs.r", "expected a mapping", "found ['PAYLOAD RAN']"),
         files={"m.yaml": tiny('!!python/object/apply:print ["PAYLOAD RAN"]')}),
    Case("key-unknown-top-level", ablate(),
         ("m.yaml:2:", "expected a known key (defaults, experiments, version)",
          "found 'experimentz'"),
         files={"m.yaml": GOOD.replace("experiments:", "experimentz:")}),
    Case("key-unknown-loss-option", ablate(),
         ("m.yaml:10:", "run 'r': loss.radiuss", "expected a known key", "found 'radiuss'"),
         files={"m.yaml": tiny("{loss: {name: rmi, radiuss: 3}}")}),
    Case("key-mistyped-value", ablate(),
         ("m.yaml:10:", "train.iterations", "expected an integer", "found 'ten'"),
         files={"m.yaml": tiny("{loss: {name: ce}, train: {iterations: ten}}")}),
    Case("key-unknown-in-set", ablate("--set", "loss.radiuss=3"),
         ("--set loss.radiuss=3", "loss.radiuss", "expected a known key", "found 'radiuss'"), **R),
    Case("key-set-without-value", ablate("--set", "loss.radius"),
         ("--set 'loss.radius'", "expected KEY=VALUE"), **R),
    Case("key-unknown-experiment", ablate(experiment="nope"),
         ("m.yaml", "no experiment 'nope'", "defines: tiny"), **R),
    Case("key-unknown-loss", ablate(),
         ("m.yaml:10:", "loss", "one of 'ce', 'bce', 'rmi', 'aaf'", "found 'dice'"),
         files={"m.yaml": tiny("{loss: {name: dice}}")}),
    Case("key-unknown-backbone", ablate(),
         ("m.yaml:10:", "model.backbone", "'resnet18', 'resnet50' or 'resnet101'",
          "found 'resnet34'"),
         files={"m.yaml": tiny("{loss: {name: ce}, model: {backbone: resnet34}}")}),
    Case("key-set-iterations-not-a-number", ablate("--set", "train.iterations=many"),
         ("--set train.iterations=many", "train.iterations", "an integer", "found 'many'"), **R),
    Case("value-batch-size-1", ablate("--set", "train.batch_size=1"),
         ("train.batch_size", "expected a number >= 2", "found 1"), **R),
    Case("value-warmup-not-below-iterations", ablate("--set", "train.warmup_iters=5"),
         ("train.warmup_iters (5) must be smaller than train.iterations (1)",), **R),
    Case("yaml-file-missing", ablate(manifest_file="nope.yaml"),
         ("nope.yaml", "manifest not found"), **R),
    # --- YAML that explodes when built: refused from the event stream, in a second -----------
    Case("bomb-alias-expansion", ablate(),
         ("m.yaml:7:", "expands to more than 200,000 values", "`*name` copies what `&name`"),
         files={"m.yaml": alias_bomb()}),
    Case("bomb-nested-500-levels", ablate(), ("m.yaml:2:", "nests more than 64 levels deep"),
         files={"m.yaml": "version: 1\nexperiments: " + "[" * 500 + "]" * 500 + "\n"}),
    Case("bomb-alias-inside-its-anchor", ablate(),
         ("m.yaml:2:", "alias *a inside the node &a it copies"),
         files={"m.yaml": "version: 1\nexperiments: &a {tiny: [*a]}\n"}),
    Case("bomb-set-value-nested", ablate("--set", "loss.radius=" + "[" * 200 + "]" * 200),
         ("--set loss.radius: the value nests more than 64 levels deep",), **R),
    # --- grids whose points collide: refused before a database is created ------------------
    Case("grid-values-same-name", ablate(),
         ("m.yaml:11:", "two runs are named 'r-radius=3'", "at {loss.radius: '3'}"),
         files={"m.yaml": with_grid("{loss: {name: rmi}}", '{loss.radius: [3, "3"]}')},
         db="fresh.db"),
    Case("grid-values-same-configuration", ablate(),
         ("runs 'r-radius=3' and 'r-radius=3.0' compute the same thing", "keep one"),
         files={"m.yaml": with_grid("{loss: {name: rmi}}", "{loss.radius: [3, 3.0]}")},
         db="fresh.db"),
    Case("grid-over-an-operational-field", ablate(),
         ("runs 'r-device=cpu' and 'r-device=auto' compute the same thing", "train.device"),
         files={"m.yaml": with_grid("{loss: {name: ce}}", "{train.device: [cpu, auto]}")},
         db="fresh.db"),
    Case("grid-too-large", ablate(),
         ("m.yaml:11:", "has 100,000 runs", "at most 10,000", "split the grid"),
         files={"m.yaml": with_grid("{loss: {name: ce}}", "{" + ", ".join(
             f"train.{k}: [{', '.join(str(v) for v in range(1, 11))}]"
             for k in ("iterations", "log_every", "checkpoint_every", "batch_size", "warmup_iters")
         ) + "}")}),
    # --- values that validate but cannot run: refused up front, never retried ---------------
    Case("value-scale-range-infinite", ablate("--set", "data.scale_range=[1, .inf]"),
         ("--set data.scale_range=[1, .inf]", "data.scale_range.1", "expected a finite number",
          "found inf"), **R),
    Case("value-lr-not-a-number", ablate("--set", "train.lr=.nan"),
         ("train.lr", "expected a finite number", "found nan"), **R),
    Case("value-seed-beyond-64-bits", ablate("--set", f"seed={2**70}"),
         ("seed", "expected a number <= 9223372036854775807", f"found {2**70}"), **R),
    Case("value-std-zero", ablate("--set", "data.std=[58, 0, 57]"),
         ("data.std must be three numbers in [0.001, 255]", "found [58.0, 0.0, 57.0]"), **R),
    Case("value-scale-beyond-memory", ablate("--set", "data.scales=[0.5, 100]"),
         ("data.scales must be numbers in (0, 8]", "found [0.5, 100.0]"), **R),
    Case("key-loss-option-without-a-loss", ("train", "--set", "train.iterations=1",
                                        "--set", "loss.radius=3", "--db", "@DB@"),
         ("loss: expected `name` to be one of 'ce', 'bce', 'rmi', 'aaf'",
          "found a mapping without `name` (radius)")),
    # --- impossible loss options --------------------------------------------------------------
    Case("value-rmi-radius-0", ablate(), ("m.yaml:10:", "loss.radius", ">= 1", "found 0"),
         files={"m.yaml": tiny("{loss: {name: rmi, radius: 0}}")}),
    Case("value-rmi-radius-11", ablate(), ("m.yaml:10:", "loss.radius", "<= 10", "found 11"),
         files={"m.yaml": tiny("{loss: {name: rmi, radius: 11}}")}),
    Case("value-rmi-pool-size-0", ablate(), ("m.yaml:10:", "loss.pool_size", ">= 1", "found 0"),
         files={"m.yaml": tiny("{loss: {name: rmi, pool_size: 0}}")}),
    Case("value-rmi-pool-median", ablate(),
         ("m.yaml:10:", "loss.pool", "one of 'avg', 'max' or 'nearest'", "found 'median'"),
         files={"m.yaml": tiny("{loss: {name: rmi, pool: median}}")}),
    Case("value-rmi-stride-not-pool-size", ablate(),
         ("m.yaml:10:", "loss.stride must equal loss.pool_size", "found stride 3 and pool_size 2"),
         files={"m.yaml": tiny("{loss: {name: rmi, pool_size: 2, stride: 3}}")}),
    # --- checkpoints --------------------------------------------------------------------------
    Case("checkpoint-missing", ("eval", "--checkpoint", "nope.pt", "--db", "@DB@"),
         ("nope.pt", "no such checkpoint file")),
    Case("checkpoint-foreign-model", EVAL,
         ("ck/checkpoints/last.pt is foreign", "expected weights for deeplabv3/resnet18 with 10",
          "found deeplabv3/resnet50"), setup="foreign_checkpoint"),
    Case("checkpoint-not-from-rmi", EVAL,
         ("is not an rmi training checkpoint", "found ['weight']"), setup="plain_state_dict"),
    Case("checkpoint-not-a-torch-file", EVAL,
         ("ck/checkpoints/last.pt is corrupt or not a PyTorch file",
          "a run resumes from its newest readable iter-<N>.pt by itself"), setup="text_checkpoint"),
    Case("checkpoint-runs-code-on-load", EVAL,
         ("is corrupt or not a PyTorch file", "unsafe or unknown content", "Unsupported global"),
         setup="code_checkpoint"),
    Case("checkpoint-without-run-folder", ("eval", "--checkpoint", "loose/last.pt",
                                           "--db", "@DB@"),
         ("loose/last.pt", "no config.json in its run folder"), setup="loose_checkpoint"),
    Case("checkpoint-run-not-trained", ("eval", "tiny/ce", "--db", "@DB@"),
         ("run 'tiny/ce' has no checkpoint", "status queued", "train it first")),
    # --- databases ----------------------------------------------------------------------------
    Case("db-newer-schema", ("status", "--db", "@DB@"),
         ("schema is at revision 9999", "does not know", "upgrade rmi"),
         db="newer.db", setup="newer_schema"),
    Case("db-newer-schema-on-write", ablate(),
         ("schema is at revision 9999", "does not know", "upgrade rmi"),
         db="newer.db", setup="newer_schema", **R),
    Case("db-not-a-database", ("status", "--db", "@DB@"),
         ("notes.txt: not an SQLite database",), db="notes.txt", setup="not_a_database"),
    Case("db-damaged", ("status", "--db", "@DB@"),
         ("damaged.db: the database file is damaged (database disk image is malformed)",
          "restore a backup"),
         db="damaged.db", setup="damaged_database"),
    # One page of a real file overwritten (`dd ... seek=7 count=1 conv=notrunc`): the schema
    # reads fine, and every command that touches the `runs` table met the damage mid-query.
    *(Case(f"db-page-damaged-{name}", (*argv, "--db", "@DB@"), DAMAGED_PAGE, setup="dd_page",
           files={"m.yaml": GOOD})
      for name, argv in [("status", ("status",)), ("status-run", ("status", "--run", "tiny/ce")),
                         ("table", ("table", "-e", "tiny")), ("worker", ("worker",)),
                         ("db-upgrade", ("db", "upgrade")),
                         ("train", ("train", "m.yaml", "-e", "tiny")), ("ablate", ablate()[:-2])]),
    Case("db-is-a-folder", ("status", "--db", "@DB@"), ("is a folder, not a database file",),
         db="folder.db", setup="folder_database"),
    Case("db-folder-missing", ablate(), ("the folder", "nowhere", "does not exist"),
         db="nowhere/rmi.db", **R),
    Case("db-missing-for-a-reader", ("status", "--db", "@DB@"),
         ("typo.db: no database file here", "check --db"), db="typo.db"),
    Case("db-read-only-file", ("worker", "--db", "@DB@"),
         ("the database file is read-only", "chmod u+w"),
         db="locked/rmi.db", setup="read_only_file", no_file_caps=True),
    Case("db-read-only-folder", ablate(),
         ("the folder", "locked is not writable", "rmi.db-wal"),
         db="locked/rmi.db", setup="read_only_folder", no_file_caps=True, **R),
    # --- results files (rmi db export / merge) ------------------------------------------------
    Case("merge-invalid-json", MERGE, ("r.json", "invalid JSON at line 1", "rmi db export"),
         files={"r.json": '{"format": "rmi-results", '}),
    Case("merge-not-a-results-file", MERGE,
         ("r.json: not a results file", '"format": "rmi-results"', "found None"),
         files={"r.json": '{"runs": []}'}),
    Case("merge-newer-version", MERGE, ("results file version 9", "reads version 1"),
         files={"r.json": '{"format": "rmi-results", "version": 9}'}),
    Case("merge-missing-field", MERGE, ("r.json: field exported_at", "Field required"),
         files={"r.json": '{"format": "rmi-results", "version": 1}'}),
    Case("merge-missing-file", MERGE, ("r.json: cannot read the results file", "No such file")),
    Case("merge-run-name-conflict", MERGE,
         ("run tiny/ce is configuration", "here (its configuration changed", "nothing was merged"),
         setup="conflicting_results"),
    Case("merge-missing-dependency", MERGE,
         ("run other/ce+crf needs run", "neither in the file nor in the database",
          "nothing was merged"), setup="results_without_dependency"),
    Case("export-unknown-experiment",
         ("db", "export", "-e", "nope", "-o", "x.json", "--db", "@DB@"),
         ("no experiment 'nope' to export", "it has: tiny")),
    # --- many GPUs, many machines -------------------------------------------------------------
    Case("submit-sqlite-database", (*SUBMIT, "--slurm-partition", "gpu"),
         ("--db is the SQLite file", "need a database server", "postgresql://"), **R),
    Case("submit-no-partition", SUBMIT, ("give --slurm-partition P", "--local"), **R),
    Case("submit-bad-time", (*SUBMIT, "--slurm-partition", "gpu", "--time", "soon"),
         ("--time: expected a Slurm time limit", "2-00:00:00", "'soon'"), **R),
    Case("submit-batch-does-not-divide",
         ("submit", "m.yaml", "-e", "tiny", "--slurm-partition", "gpu", "--gpus-per-job", "4",
          "--db", "postgresql://nobody@127.0.0.1:1/never-reached"),
         ("run ce: train.batch_size 2 does not divide among 4 processes",), **R),
    Case("cli-train-bad-gpu-list", ("train", "m.yaml", "-e", "tiny", "--run", "ce", "--gpus", "0,x",
         "--db", "@DB@"), ("--gpus: expected distinct GPU numbers", "'0,x'"), **R),
    # --- data this machine cannot read, for runs that would start here -----------------------
    Case("local-workers-empty-eval-split", local(),
         ("split list", "data/val.txt lists no images", "one image name per line"),
         files={"m.yaml": LOCAL_FOLDER}, setup="empty_eval_split"),
    Case("local-workers-duplicate-class-names", local(),
         ("classes.txt names a class twice ('car' is labels 1, 2)", "own name"),
         files={"m.yaml": LOCAL_FOLDER}, setup="duplicate_class_names"),
    Case("local-workers-empty-class-name", local(),
         ("classes.yaml: class 1 has an empty name", "name every class"),
         files={"m.yaml": LOCAL_FOLDER}, setup="empty_class_name"),
    Case("bomb-class-list", local(),
         ("classes.yaml:7: the class-name list expands to more than 200,000 values",),
         files={"m.yaml": LOCAL_FOLDER}, setup="class_list_alias_bomb"),
    Case("local-runs-dir-is-a-file", local("--runs-dir", "afile"),
         ("runs folder", "afile is a file, not a folder", "point --runs-dir at a folder"),
         setup="a_file", **R),
    Case("local-runs-dir-under-a-file", local("--runs-dir", "afile/runs"),
         ("runs folder", "afile/runs", "afile is a file, not a folder"), setup="a_file", **R),
    Case("local-runs-dir-on-proc", local("--runs-dir", "/proc/rmi-runs"),
         ("runs folder /proc/rmi-runs", "cannot write there", "a writable folder"), **R),
    Case("local-runs-dir-read-only", local("--runs-dir", "ro/runs"),
         ("runs folder", "ro/runs", "cannot write there (Permission denied)"),
         setup="read_only_runs", no_file_caps=True, **R),
    Case("local-runs-dir-worker", ("worker", "--runs-dir", "afile", "--db", "@DB@"),
         ("runs folder", "afile is a file, not a folder"), setup="a_file"),
    Case("local-runs-dir-train", ("train", "m.yaml", "-e", "tiny", "--runs-dir", "afile",
                                  "--db", "@DB@"),
         ("runs folder", "afile is a file, not a folder"), setup="a_file", db="fresh.db", **R),
    Case("local-runs-dir-crf", ("crf", "--run", "tiny/ce", "--runs-dir", "/proc/rmi",
                                "--db", "@DB@"),
         ("runs folder /proc/rmi", "cannot write there")),
    Case("state-crf-on-a-queued-run", ("crf", "--run", "tiny/ce", "--db", "@DB@"),
         ("run tiny/ce is queued, not trained yet", "let a worker finish it")),
    Case("state-crf-on-a-failed-run", ("crf", "--run", "tiny/ce", "--db", "@DB@"),
         ("run tiny/ce failed (CUDA is not available here)", "train it again",
          "--requeue-failed"), setup="run_failed"),
    Case("state-train-a-run-running-elsewhere", ("train", "m.yaml", "-e", "tiny", "--db", "@DB@"),
         ("run tiny/ce is held by worker elsewhere:1", "lease ends", "rmi train --wait"),
         setup="run_elsewhere", **R),
    Case("local-workers-missing-root",
         ("ablate", "m.yaml", "-e", "tiny", "--workers", "1", "--db", "@DB@"),
         ("data root", "/nonexistent/camvid does not exist", "fix the path or set the variable"),
         files={"m.yaml": tiny('{data: {name: camvid, root: "/nonexistent/camvid"}}')}),
    Case("local-workers-weights-variable-unset",
         ("ablate", "m.yaml", "-e", "tiny", "--workers", "1", "--db", "@DB@"),
         ("model.pretrained of 1 run of tiny", "${RMI_TEST_NEVER_SET_WEIGHTS}",
          "not set on this machine", "--workers 0 only queues them"),
         files={"m.yaml": tiny('{loss: {name: ce}, '
                               'model: {pretrained: "${RMI_TEST_NEVER_SET_WEIGHTS}"}}')}),
    Case("local-crf-unknown-split", ("crf", "--run", "tiny/ce", "--split", "nope", "--db", "@DB@"),
         ("dataset 'synthetic' has no split 'nope'", "known splits: train, val, test")),
    Case("cli-table-unknown-baseline", ("table", "-e", "tiny", "--baseline", "XYZ", "--db", "@DB@"),
         ("--baseline 'XYZ'", "has no such method", "its methods: CE")),
    # --- command-line arguments ---------------------------------------------------------------
    Case("cli-unknown-option", ("status", "--bogus", "--db", "@DB@"),
         ("No such option: --bogus", "rmi --help")),
    Case("cli-unknown-command", ("trian", "--db", "@DB@"),
         ("No such command 'trian'", "Did you mean 'train'")),
    Case("cli-bad-iters", ("crf", "--run", "tiny/ce", "--iters", "1,x", "--db", "@DB@"),
         ("--iters", "expected comma-separated integers", "found '1,x'")),
    Case("cli-zero-iters", ("crf", "--run", "tiny/ce", "--iters", "0", "--db", "@DB@"),
         ("--iters", "expected positive integers", "found '0'")),
    Case("cli-iters-empty-item", ("crf", "--run", "tiny/ce", "--iters", "1,,5", "--db", "@DB@"),
         ("--iters", "comma-separated list such as 1,5,10", "found '1,,5' (an empty item)")),
    Case("cli-gpus-empty-item", ablate("--gpus", "0,,1"),
         ("--gpus: expected distinct GPU numbers", "found '0,,1' (an empty item)"), **R),
    Case("cli-train-gpus-empty-item", ("train", "m.yaml", "-e", "tiny", "--gpus", "0,,1",
                                       "--db", "@DB@"),
         ("--gpus: expected distinct GPU numbers", "found '0,,1' (an empty item)"), **R),
    Case("cli-bad-status-format", ("status", "--format", "xml", "--db", "@DB@"),
         ("--format", "'xml' is not one of 'rich', 'csv', 'json'", "rmi --help")),
    Case("cli-bad-table-format", ("table", "-e", "tiny", "--format", "xml", "--db", "@DB@"),
         ("--format", "'xml' is not one of 'rich', 'markdown', 'latex', 'html', 'csv', 'json'")),
    Case("table-unknown-metric", ("table", "-e", "tiny", "--metric", "iou", "--db", "@DB@"),
         ("--metric", "'iou' is not one of 'miou', 'boundary-iou'")),
    Case("figure-curves-before-training", ("figure", "curves", "-e", "tiny", "--db", "@DB@"),
         ("experiment 'tiny' has no training metrics stored yet", "train its runs first")),
    Case("figure-ablation-without-grid", ("figure", "ablation", "-e", "tiny", "--db", "@DB@"),
         ("experiment 'tiny' has no ablation grid", "voc-table3a")),
    Case("figure-qualitative-unknown-run",
         ("figure", "qualitative", "-e", "tiny", "--runs", "ce,nope", "--db", "@DB@"),
         ("--runs", "has no evaluated run or method 'ce'", "its evaluated runs: none")),
    Case("figure-qualitative-bad-pick",
         ("figure", "qualitative", "-e", "tiny", "--runs", "ce", "--pick", "best", "--db", "@DB@"),
         ("--pick", "'best' is not one of 'first', 'biggest-gain'")),
    Case("report-unknown-experiment", ("report", "-e", "nope", "-o", "out", "--db", "@DB@"),
         ("no experiment 'nope' in the database", "it has: tiny")),
    Case("report-output-is-a-file", ("report", "-e", "tiny", "-o", "m.yaml", "--db", "@DB@"),
         ("--output m.yaml", "is a file", "give a folder"), **R),
    Case("cli-missing-experiment", ("ablate", "m.yaml", "--db", "@DB@"),
         ("Missing option '--experiment'",), **R),
    Case("cli-train-without-experiment", ("train", "m.yaml", "--db", "@DB@"),
         ("m.yaml", "name the experiment with --experiment"), **R),
    Case("cli-table-output-fifo", ("table", "-e", "tiny", "-o", "pipe", "--db", "@DB@"),
         ("--output pipe: is a FIFO, device or socket, not a regular file", "give a file path"),
         setup="fifo"),
    Case("cli-lease-zero", ("worker", "--lease", "0", "--db", "@DB@"),
         ("Invalid value for '--lease'", "greater than or equal to 1")),
    Case("cli-eval-without-target", ("eval", "--db", "@DB@"),
         ("give a RUN or --checkpoint FILE",)),
]  # fmt: skip


# --- set-ups that write binary files ----------------------------------------------------------


def _dataset(root: Path) -> Path:
    return write_folder_dataset(root / "data")


def no_class_list(root: Path) -> None:
    (_dataset(root) / "classes.txt").unlink()


def no_split_list(root: Path) -> None:
    (_dataset(root) / "train.txt").unlink()


def label_out_of_range(root: Path) -> None:
    write_png(_dataset(root) / "labels" / "b.png", np.full((16, 16), 7, np.uint8))


def size_mismatch(root: Path) -> None:
    write_png(_dataset(root) / "labels" / "b.png", np.zeros((12, 16), np.uint8))


def empty_eval_split(root: Path) -> None:
    (_dataset(root) / "val.txt").write_text("# to do\n")


def duplicate_class_names(root: Path) -> None:
    (_dataset(root) / "classes.txt").write_text("road\ncar\ncar\n")


def empty_class_name(root: Path) -> None:
    data = _dataset(root)
    (data / "classes.txt").unlink()
    (data / "classes.yaml").write_text("[road, '', sky]\n")


def class_list_alias_bomb(root: Path) -> None:
    data = _dataset(root)
    (data / "classes.txt").unlink()
    (data / "classes.yaml").write_text(alias_bomb().split("\nexperiments:")[0] + "\nnames: *l8\n")


def all_void_eval(root: Path) -> None:
    write_png(_dataset(root) / "labels" / "c.png", np.full((16, 16), 255, np.uint8))


def float_image(root: Path) -> None:
    data = _dataset(root)
    (data / "images" / "b.png").unlink()
    Image.fromarray(np.ones((16, 16), np.float32)).save(data / "images" / "b.tif")


def corrupt_image(root: Path) -> None:
    (_dataset(root) / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 8)


def _checkpoint(root: Path, state: object, *, config: bool = True) -> None:
    import torch

    from rmi_cli.config import RunConfig
    from rmi_cli.manifest import manifest_from_text

    run = manifest_from_text(GOOD).plan("tiny").runs[0]
    folder = root / "ck"
    (folder / "checkpoints").mkdir(parents=True)
    if config:
        (folder / "config.json").write_text(RunConfig.model_dump_json(run.config))
    path = folder / "checkpoints" / "last.pt"
    if isinstance(state, bytes):
        path.write_bytes(state)
    else:
        torch.save(state, path)


def foreign_checkpoint(root: Path) -> None:
    signature = {"model": "deeplabv3", "backbone": "resnet50", "deep_stem": False}
    state = {"format": 1, "iteration": 1, "config_hash": "0" * 16, "model": {}}
    _checkpoint(root, state | {"signature": signature | {"num_classes": 10}})


def plain_state_dict(root: Path) -> None:
    import torch

    _checkpoint(root, {"weight": torch.zeros(2)})


def text_checkpoint(root: Path) -> None:
    _checkpoint(root, b"model weights, honest\n")


class _Payload:
    """Unpickling this calls print: a weights_only load must refuse it, not run it."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return print, ("PAYLOAD RAN",)


def code_checkpoint(root: Path) -> None:
    _checkpoint(root, {"model": _Payload()})


def loose_checkpoint(root: Path) -> None:
    import torch

    (root / "loose").mkdir()
    torch.save({"format": 1}, root / "loose" / "last.pt")


def newer_schema(root: Path) -> None:
    import sqlite3

    shutil.copy(root / "rmi.db", root / "newer.db")
    with sqlite3.connect(root / "newer.db") as conn:
        conn.execute("UPDATE rmi_schema_version SET version_num = '9999'")
    conn.close()


def not_a_database(root: Path) -> None:
    (root / "notes.txt").write_text("results: see the lab book\n")


def damaged_database(root: Path) -> None:
    header = (root / "rmi.db").read_bytes()[:100]
    (root / "damaged.db").write_bytes(header + bytes(range(256)) * 16)


def fifo(root: Path) -> None:
    os.mkfifo(root / "pipe")


def dd_page(root: Path) -> None:
    """The break-test's command, on the template database (page 8 holds the `runs` table)."""
    for _ in range(5):  # random bytes that happen to form a valid page are redrawn
        subprocess.run(
            ["dd", "if=/dev/urandom", "of=rmi.db", "bs=4096", "seek=7", "count=1", "conv=notrunc"],
            cwd=root, check=True, capture_output=True,
        )  # fmt: skip
        if query_safely(root / "rmi.db", "PRAGMA quick_check") != [("ok",)]:
            return
    raise AssertionError("five random pages in a row passed SQLite's quick_check")


def query_safely(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """The rows, or None when SQLite refuses the file (what a damaged page makes it do)."""
    try:
        return query(db, sql)
    except sqlite3.DatabaseError:
        return None


def folder_database(root: Path) -> None:
    (root / "folder.db").mkdir()


def read_only_file(root: Path) -> None:
    (root / "locked").mkdir()
    shutil.copy(root / "rmi.db", root / "locked" / "rmi.db")
    (root / "locked" / "rmi.db").chmod(0o444)


def a_file(root: Path) -> None:
    (root / "afile").write_text("not a folder\n")


def read_only_runs(root: Path) -> None:
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)


def run_failed(root: Path) -> None:
    with closing(sqlite3.connect(root / "rmi.db")) as conn, conn:
        conn.execute("UPDATE runs SET status = 'failed', error = 'CUDA is not available here'")


def run_elsewhere(root: Path) -> None:
    """The run held by a live worker of another machine (its lease a day away)."""
    with closing(sqlite3.connect(root / "rmi.db")) as conn, conn:
        conn.execute(
            "UPDATE runs SET status = 'running', worker = 'elsewhere:1', attempts = 1, "
            "heartbeat_at = datetime('now'), lease_expires_at = datetime('now', '+1 day')"
        )


def read_only_folder(root: Path) -> None:
    (root / "locked").mkdir()
    shutil.copy(root / "rmi.db", root / "locked" / "rmi.db")
    (root / "locked").chmod(0o555)


def _results_file(root: Path, name: str, specs: list[Any]) -> dict[str, Any]:
    """A results file of experiment `name` with `specs` queued, as JSON."""
    from rmi_cli.db import enqueue_experiment, open_database
    from rmi_cli.db.export import export_experiment

    with open_database(str(root / "other.db")) as db:
        enqueue_experiment(db, name, specs)
        return export_experiment(db, name).model_dump(mode="json")


def _train_spec(name: str, seed: int) -> Any:
    from rmi_cli.config import RunConfig, TrainConfig
    from rmi_cli.db import JobSpec

    config = RunConfig(train=TrainConfig(iterations=3), seed=seed)
    return JobSpec("train", config.to_json_dict(), config.canonical_hash(), name=name)


def conflicting_results(root: Path) -> None:
    """Experiment tiny, whose run ce is another configuration than the database's."""
    document = _results_file(root, "tiny", [_train_spec("ce", 99)])
    (root / "r.json").write_text(json.dumps(document))


def results_without_dependency(root: Path) -> None:
    """A CRF step whose train run was cut out of the file (the file's other run merges first)."""
    from rmi_cli.db import JobSpec

    train, first = _train_spec("ce", 5), _train_spec("a", 6)
    crf = JobSpec(
        "crf", {"on": train.config_hash}, "crf-x", name="ce+crf", depends_on=train.config_hash
    )
    document = _results_file(root, "other", [first, train, crf])
    document["runs"] = [run for run in document["runs"] if run["config_hash"] != train.config_hash]
    (root / "r.json").write_text(json.dumps(document))


SETUPS: dict[str, Callable[[Path], None]] = {
    f.__name__: f
    for f in (
        conflicting_results,
        results_without_dependency,
        no_class_list,
        no_split_list,
        label_out_of_range,
        size_mismatch,
        corrupt_image,
        empty_eval_split,
        duplicate_class_names,
        empty_class_name,
        class_list_alias_bomb,
        all_void_eval,
        float_image,
        foreign_checkpoint,
        plain_state_dict,
        text_checkpoint,
        code_checkpoint,
        loose_checkpoint,
        newer_schema,
        dd_page,
        fifo,
        not_a_database,
        damaged_database,
        folder_database,
        read_only_file,
        read_only_folder,
        a_file,
        read_only_runs,
        run_failed,
        run_elsewhere,
    )
}


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with an experiment queued (one run, not trained): what users point at."""
    folder = tmp_path_factory.mktemp("template")
    (folder / "m.yaml").write_text(GOOD)
    result = rmi("ablate", "m.yaml", "-e", "tiny", "--workers", "0", "--db", "rmi.db", cwd=folder)
    assert result.code == 0, result
    return folder / "rmi.db"


@pytest.fixture
def workspace(tmp_path: Path, template_db: Path) -> Iterator[Path]:
    shutil.copy(template_db, tmp_path / "rmi.db")
    yield tmp_path
    for path in [tmp_path, *tmp_path.rglob("*")]:  # undo the read-only cases' chmod
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)
    remove_run_folders(tmp_path)


def test_the_corpus_is_large_and_unique() -> None:
    ids = [case.id for case in CASES] + [case.id for case in JOB_CASES]
    assert len(ids) >= 30 and len(set(ids)) == len(ids)
    unclassified = [case.id for case in CASES if case_class(case.id) not in CLASSES]
    assert unclassified == [], "start the id with a prefix of CLASSES (or add a class)"
    assert all(case.setup is None or case.setup in SETUPS for case in [*CASES, *JOB_CASES])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, workspace: Path) -> None:
    for name, text in case.files.items():
        (workspace / name).write_text(text)
    if case.setup is not None:
        SETUPS[case.setup](workspace)
    db = workspace / case.db
    existed = db.exists()
    before = file_hash(db) if db.is_file() else None
    argv = [arg.replace("@DB@", case.db) for arg in case.argv]
    preexec = None
    if case.no_file_caps and os.geteuid() == 0:
        preexec = drop_file_capabilities
    try:
        result = rmi(*argv, cwd=workspace, preexec_fn=preexec)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE, so chmod cannot stop root ({exc})")

    assert result.code == case.code, result
    assert "Traceback" not in result.err and "PAYLOAD RAN" not in result.out, result
    # The one line is the whole of stderr.
    (line,) = result.err_lines
    assert line.startswith("error: "), result
    words = [w.replace("@PATH@", str(db)).replace("@FOLDER@", str(db.parent)) for w in case.words]
    missing = [word for word in words if word not in line]
    assert missing == [], line
    assert db.exists() == existed, "a database was created"
    assert (file_hash(db) if db.is_file() else None) == before, "the database changed"


def as_reader(workspace: Path, *argv: str) -> Result:
    """`rmi argv` run like a user who may not write what chmod protects (root drops the
    capabilities that would let it)."""
    preexec = drop_file_capabilities if os.geteuid() == 0 else None
    try:
        return rmi(*argv, cwd=workspace, preexec_fn=preexec)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop CAP_DAC_OVERRIDE, so chmod cannot stop root ({exc})")


@pytest.mark.parametrize("setup", ["read_only_file", "read_only_folder"])
@pytest.mark.parametrize(
    "argv",
    [("status",), ("status", "--run", "tiny/ce"), ("table", "-e", "tiny"), ("db", "current")],
    ids=lambda argv: " ".join(argv),
)
def test_readers_read_a_database_they_may_not_write(
    workspace: Path, setup: str, argv: tuple[str, ...]
) -> None:
    """A shared results file (read-only, or in a read-only folder) is read as a snapshot by the
    commands that only read; nothing is written beside it (no -wal/-shm files)."""
    SETUPS[setup](workspace)
    locked = workspace / "locked"
    before = sorted(p.name for p in locked.iterdir()), file_hash(locked / "rmi.db")
    result = as_reader(workspace, *argv, "--db", "locked/rmi.db")
    assert result.code == 0, result
    assert "error" not in result.err, result
    assert (sorted(p.name for p in locked.iterdir()), file_hash(locked / "rmi.db")) == before


def test_a_read_only_database_in_a_folder_named_with_a_hash(workspace: Path) -> None:
    """The snapshot is opened by URI: a `#` in the path must not cut it (and open elsewhere)."""
    odd = workspace / "we#ird"
    odd.mkdir()
    shutil.copy(workspace / "rmi.db", odd / "rmi.db")
    (odd / "rmi.db").chmod(0o444)
    odd.chmod(0o555)
    result = as_reader(workspace, "status", "--db", "we#ird/rmi.db")
    assert result.code == 0, result
    assert sorted(p.name for p in workspace.iterdir() if p.name.startswith("we")) == ["we#ird"]


def _locked_copy_with_wal(workspace: Path, *, with_shm: bool) -> None:
    """locked/rmi.db with a committed change (an error text) still in its -wal file."""
    locked = workspace / "locked"
    locked.mkdir()
    conn = sqlite3.connect(workspace / "rmi.db")
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("UPDATE runs SET error = 'only in the WAL'")
        conn.commit()
        for suffix in ("", "-wal", *(["-shm"] if with_shm else [])):
            shutil.copy(workspace / f"rmi.db{suffix}", locked / f"rmi.db{suffix}")
    finally:
        conn.close()
    for path in locked.iterdir():
        path.chmod(0o444)
    locked.chmod(0o555)


def test_a_read_only_database_with_changes_in_its_wal_is_read_whole(workspace: Path) -> None:
    _locked_copy_with_wal(workspace, with_shm=True)
    result = as_reader(workspace, "status", "--format", "csv", "--db", "locked/rmi.db")
    assert result.code == 0, result
    assert "only in the WAL" in result.out


def test_a_wal_that_cannot_be_read_is_one_line(workspace: Path) -> None:
    _locked_copy_with_wal(workspace, with_shm=False)
    result = as_reader(workspace, "status", "--db", "locked/rmi.db")
    assert result.code == 2, result
    (line,) = result.err_lines
    assert "its latest changes are in rmi.db-wal" in line and "copy both files" in line


# --- errors found while a job runs ------------------------------------------------------------


@dataclass(frozen=True)
class JobCase:
    """A run of the experiment `bad` that fails when it meets its data: the job is failed at
    once (bad input fails the same way every time: no retry) with the error stored."""

    id: str  # also the run's name
    run: str  # the run's YAML; @ROOT@ is the case's dataset folder
    words: tuple[str, ...]
    setup: str | None = None


JOB_CASES = [
    # 16x16 crops average-pooled by 4 (padding 2) give 5x5 maps: no room for 6x6 regions.
    JobCase("rmi-pooled-map-smaller-than-region",
            "{loss: {name: rmi, pool: avg, pool_size: 4, radius: 6}}",
            ("RMI needs a pooled map of at least R x R", "input 16x16", "gives 5x5", "R=6")),
    JobCase("dataset-root-missing", FOLDER_RUN,
            ("data root", "dataset-root-missing/data does not exist", "fix the path")),
    JobCase("dataset-no-class-list", FOLDER_RUN, ("class-name list", "classes.txt", "not found"),
            setup="no_class_list"),
    JobCase("dataset-no-split-list", FOLDER_RUN, ("no split 'train'", "known splits: val"),
            setup="no_split_list"),
    JobCase("labels-outside-class-range", FOLDER_RUN,
            ("labels/b.png holds values [7] outside [0, 3)", "not the void value 255"),
            setup="label_out_of_range"),
    JobCase("image-label-size-mismatch", FOLDER_RUN,
            ("labels/b.png is 16x12 (WxH) but image", "images/b.png is 16x16", "the same size"),
            setup="size_mismatch"),
    JobCase("image-corrupt", FOLDER_RUN, ("image", "images/b.png cannot be decoded", "replace"),
            setup="corrupt_image"),
    JobCase("image-floating-point", FOLDER_RUN,
            ("images/b.tif holds floating-point pixels (mode F)", "convert it to an 8-bit"),
            setup="float_image"),
    JobCase("dataset-duplicate-class-names", FOLDER_RUN,
            ("classes.txt names a class twice ('car' is labels 1, 2)",),
            setup="duplicate_class_names"),
    JobCase("dataset-empty-eval-split", FOLDER_RUN, ("split list", "val.txt lists no images"),
            setup="empty_eval_split"),
    # Only visible once the labels are read: the run trains, then its evaluation is refused
    # (the mIoU would be NaN) with the error stored once, not three times.
    JobCase("eval-split-all-void", FOLDER_RUN,
            ("split 'val' of the folder dataset has no labelled pixel", "label some pixels"),
            setup="all_void_eval"),
]  # fmt: skip


@dataclass(frozen=True)
class Batch:
    result: Result
    runs: dict[str, dict[str, Any]]
    folder: Path  # its database and run folders (kept until the module's tests are done)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Every job case as one run of one experiment, beside a good run, queued for other
    machines (`rmi ablate --workers 0`: there is no check of data that is read elsewhere) and
    run by one `rmi worker` (one process: torch loads once; one bad run must not stop the
    others). `rmi ablate` with local workers refuses such data before queueing instead."""
    folder = tmp_path_factory.mktemp("jobs")
    runs = {"ok": "{loss: {name: ce}}"}
    for case in JOB_CASES:
        (folder / case.id).mkdir()
        if case.setup is not None:
            SETUPS[case.setup](folder / case.id)
        runs[case.id] = case.run.replace("@ROOT@", str(folder / case.id / "data"))
    (folder / "m.yaml").write_text(manifest(runs, name="bad"))
    try:
        queued = rmi(
            "ablate", "m.yaml", "-e", "bad", "--workers", "0", "--db", "rmi.db", cwd=folder
        )
        assert queued.code == 0, queued
        result = rmi("worker", "-e", "bad", "--db", "rmi.db", cwd=folder, timeout=300)
        yield Batch(result, runs_table(folder / "rmi.db"), folder)
    finally:
        remove_run_folders(folder)


def test_bad_runs_fail_and_the_others_still_run(batch: Batch) -> None:
    result = batch.result
    assert result.code == 1, result
    assert "Traceback" not in result.err, result
    assert batch.runs["bad/ok"]["status"] == "done"
    failed = ", ".join(f"bad/{case.id}" for case in JOB_CASES)
    assert result.err_lines[-1] == f"error: {len(JOB_CASES)} job(s) failed: {failed}"


@pytest.mark.parametrize("case", JOB_CASES, ids=[case.id for case in JOB_CASES])
def test_a_job_that_meets_bad_data_fails_with_its_error_stored(case: JobCase, batch: Batch) -> None:
    (line,) = [line for line in batch.result.err_lines if f"run bad/{case.id} failed" in line]
    assert line.startswith(f"error: run bad/{case.id} failed: ")
    missing = [word for word in case.words if word not in line]
    assert missing == [], line
    run = batch.runs[f"bad/{case.id}"]
    assert (run["status"], run["attempts"]) == ("failed", 1)
    assert all(word in run["error"] for word in case.words), run["error"]


def test_evaluating_a_split_without_labels_again_is_one_line(batch: Batch) -> None:
    """`rmi eval` on the run whose evaluation split has only void labels: the trained model is
    there, the scores cannot be; it printed a traceback ending in "miou must be a fraction"."""
    db = batch.folder / "rmi.db"
    before = file_hash(db)
    result = rmi("eval", "bad/eval-split-all-void", "--db", "rmi.db", cwd=batch.folder)
    assert result.code == 2, result
    (line,) = result.err_lines
    assert line.startswith("error: split 'val' of the folder dataset has no labelled pixel"), line
    assert file_hash(db) == before
