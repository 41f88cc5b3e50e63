"""The manifest: defaults, runs, grids, seeds, overrides, hashing and one-line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rmi_cli.config import HASH_NEUTRAL_DEFAULTS, RMILossConfig, RunConfig
from rmi_cli.errors import ConfigError
from rmi_cli.manifest import load_manifest, manifest_from_text

REPO = Path(__file__).resolve().parents[2]

BASE = """
defaults:
  train: {iterations: 10, batch_size: 2}
  model: {backbone: resnet18}
experiments:
"""


def manifest(body: str, name: str = "m.yaml"):
    return manifest_from_text(BASE + textwrap.indent(textwrap.dedent(body), "  "), name)


def error_of(body: str, overrides: tuple[str, ...] = (), experiment: str = "x") -> str:
    with pytest.raises(ConfigError) as info:
        manifest(body).plan(experiment, overrides)
    return str(info.value)


def test_shipped_manifest_plans_every_experiment() -> None:
    shipped = load_manifest(REPO / "experiments.yaml")
    counts = {name: len(shipped.plan(name).runs) for name in shipped.experiment_names}
    paper = {
        "camvid-table4": 24,  # 4 methods x 2 models x 3 seeds
        "voc-table1": 8,
        "voc-table2": 4,
        "voc-table3a": 15,  # way x factor
        "voc-table3b": 10,  # factor x radius
    }
    twins = {f"{name}-scratch": count for name, count in paper.items()}
    assert counts == {"quickstart": 3} | paper | twins
    camvid = shipped.plan("camvid-table4")
    assert len(camvid.crf_steps) == 6  # one per CE run
    assert {run.group for run in camvid.runs} == {"DeepLabv3", "DeepLabv3+"}
    assert {run.label for run in camvid.runs} == {"CE", "BCE", "Affinity", "RMI"}
    rmi = camvid.run("rmi-deeplabv3plus-s2").config
    assert rmi.loss == RMILossConfig(pool="avg", pool_size=4, radius=3)
    assert (rmi.train.lr, rmi.train.iterations, rmi.data.crop_size) == (0.025, 5800, 481)
    for name in paper:
        (twin,) = shipped.children(name)
        planned, scratch = shipped.plan(name).runs, shipped.plan(twin).runs
        assert [r.name for r in scratch] == [r.name for r in planned]
        for ours, theirs in zip(scratch, planned, strict=True):
            assert theirs.config.model.pretrained == "${RMI_RESNET101_DEEP_STEM}"
            assert ours.config == theirs.config.model_copy(
                update={"model": theirs.config.model.model_copy(update={"pretrained": None})}
            )


def test_layers_merge_in_order_and_overrides_win() -> None:
    plan = manifest(
        """
        x:
          defaults: {train: {lr: 0.5}, loss: {name: rmi, radius: 2}}
          runs:
            a: {loss: {radius: 4}, label: Mine, group: G}
            b: {loss: {name: ce}}
        """
    ).plan("x", ["train.batch_size=7"])
    a, b = plan.runs
    assert a.config.loss == RMILossConfig(radius=4)
    assert (a.label, a.group) == ("Mine", "G")
    assert b.config.loss.name == "ce"  # a different loss replaces the inherited options
    assert (a.config.train.lr, a.config.train.batch_size, a.config.train.iterations) == (0.5, 7, 10)


def test_grids_union_and_seeds_name_runs() -> None:
    plan = manifest(
        """
        x:
          runs: {r: {loss: {name: rmi}}}
          grid:
            - {loss.pool: [max], loss.pool_size: [4]}
            - {loss.pool: [avg], loss.pool_size: [2, 4]}
          seeds: [1, 2]
        """
    ).plan("x")
    names = [run.name for run in plan.runs]
    assert names == [
        "r-pool=max-pool_size=4-s1",
        "r-pool=max-pool_size=4-s2",
        "r-pool=avg-pool_size=2-s1",
        "r-pool=avg-pool_size=2-s2",
        "r-pool=avg-pool_size=4-s1",
        "r-pool=avg-pool_size=4-s2",
    ]
    assert plan.runs[2].params == {"loss.pool": "avg", "loss.pool_size": 2}
    assert [run.config.seed for run in plan.runs[:2]] == [1, 2]
    assert len({run.config_hash for run in plan.runs}) == 6


def test_hash_ignores_operational_fields_only() -> None:
    m = manifest("x: {runs: {a: {loss: {name: ce}}}}")
    base = m.plan("x").runs[0].config_hash
    assert m.plan("x", ["data.workers=9", "train.device=cpu"]).runs[0].config_hash == base
    assert m.plan("x", ["train.lr=0.1"]).runs[0].config_hash != base
    assert m.plan("x").runs[0].config_hash == base  # stable across calls


# Hashes computed by the release before model.layout, model.bn_momentum and data.void existed.
HASHES_BEFORE_NEW_FIELDS = {
    "0cb16820060f4c45": {"train": {"iterations": 10}},
    "126a807ddc80db3c": {
        "model": {"name": "deeplabv3plus", "backbone": "resnet101", "deep_stem": True,
                  "pretrained": "/w.pth"},
        "data": {"name": "camvid", "root": "/data/camvid", "crop_size": 479,
                 "scale_range": [0.75, 1.25]},
        "loss": {"name": "rmi"},
        "train": {"iterations": 6000, "lr": 0.025, "warmup_iters": 300},
        "seed": 2,
    },
}  # fmt: skip


@pytest.mark.parametrize(("expected", "fields"), list(HASHES_BEFORE_NEW_FIELDS.items()))
def test_new_fields_at_their_neutral_value_keep_stored_hashes(
    expected: str, fields: dict[str, object]
) -> None:
    config = RunConfig.model_validate(fields)
    assert config.canonical_hash() == expected
    for key, value in HASH_NEUTRAL_DEFAULTS.items():  # written out explicitly: still neutral
        part, name = key.split(".")
        explicit = config.model_copy(
            update={part: getattr(config, part).model_copy(update={name: value})}
        )
        assert explicit.canonical_hash() == expected
    other = {"model.layout": "released", "model.bn_momentum": 0.05}
    for key, value in other.items():
        part, name = key.split(".")
        changed = config.model_copy(
            update={part: getattr(config, part).model_copy(update={name: value})}
        )
        assert changed.canonical_hash() != expected, key


def test_void_as_a_class_is_for_datasets_with_a_void_label() -> None:
    assert "data.void" in error_of(
        """
        x: {defaults: {data: {name: synthetic, void: class}}}
        """
    )
    camvid = RunConfig.model_validate(
        {"train": {"iterations": 1}, "data": {"name": "camvid", "root": "/c", "void": "class"}}
    )
    assert (
        camvid.canonical_hash()
        != camvid.model_copy(
            update={"data": camvid.data.model_copy(update={"void": "ignore"})}
        ).canonical_hash()
    )


def test_extends_inherits_everything_and_layers_defaults() -> None:
    m = manifest(
        """
        parent:
          description: the parent
          defaults: {model: {deep_stem: true, pretrained: /w.pth}, train: {lr: 0.5}}
          runs: {ce: {loss: {name: ce}}, rmi: {loss: {name: rmi}}}
          grid: {model.name: [deeplabv3, deeplabv3plus]}
          seeds: [0, 1]
          crf: {on: ce, iters: [1]}
          tables: [{kind: per-class}]
        child:
          extends: parent
          description: the child
          defaults: {model: {pretrained: null}}
        grandchild:
          extends: child
          runs: {ce: {loss: {name: ce}}}
        """
    )
    parent, child = m.plan("parent"), m.plan("child")
    assert [r.name for r in child.runs] == [r.name for r in parent.runs]
    assert len(child.runs) == 8 and len(child.crf_steps) == 4
    assert child.tables == parent.tables and child.description == "the child"
    for ours, theirs in zip(child.runs, parent.runs, strict=True):
        assert ours.config.model.pretrained is None and theirs.config.model.pretrained == "/w.pth"
        assert ours.config.model.deep_stem and ours.config.train.lr == 0.5
        assert ours.config_hash != theirs.config_hash
    grandchild = m.plan("grandchild")
    assert [r.entry for r in grandchild.runs] == ["ce"] * 4
    assert grandchild.description == "the child"
    assert grandchild.runs[0].config.model.pretrained is None
    assert m.children("parent") == ["child"] and m.children("child") == ["grandchild"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "x: {extends: nowhere}",
            "m.yaml:6: experiments.x.extends: expected one of this manifest's experiments "
            "(x); found 'nowhere'",
        ),
        (
            "x: {extends: y}\ny: {extends: x}",
            "m.yaml:7: extends loops (x -> y -> x)",
        ),
    ],
)
def test_extends_errors_name_the_line(body: str, expected: str) -> None:
    assert error_of(body) == expected


def test_crf_steps_follow_their_runs() -> None:
    plan = manifest(
        """
        x:
          runs: {ce: {loss: {name: ce}}, rmi: {loss: {name: rmi}}}
          seeds: [0, 1]
          crf: {on: ce, iters: [1, 5], bilateral_srgb: 10}
        """
    ).plan("x")
    assert [step.target.name for step in plan.crf_steps] == ["ce-s0", "ce-s1"]
    step = plan.crf_steps[0]
    assert step.crf.iters == (1, 5) and step.crf.bilateral_srgb == 10
    assert step.split == "val"
    assert step.job_config()["on"] == step.target.config_hash


@pytest.mark.parametrize(
    ("body", "overrides", "expected"),
    [
        (
            "x: {runs: {a: {loss: {name: rmi, radius: 11}}}}",
            (),
            "m.yaml:6: run 'a': loss.radius: expected a number <= 10; found 11",
        ),
        (
            "x: {runs: {a: {loss: {name: rmi}}}}",
            ("loss.pool=median",),
            "--set loss.pool=median: run 'a': loss.pool: expected one of 'avg', 'max' or "
            "'nearest'; found 'median'",
        ),
        (
            "x: {runs: {a: {loss: {name: rmi, pool_size: 4, stride: 2}}}}",
            (),
            "m.yaml:6: run 'a': loss: loss.stride must equal loss.pool_size",
        ),
        (
            "x: {runs: {a: {loss: {name: rmi, weight_lambda: 2}}}}",
            (),
            "m.yaml:6: run 'a': loss: loss.weight_lambda must be in [0, 1] with lambda_way 1",
        ),
        (
            "x: {runs: {a: {loss: {name: rmi, weight_lambda: -1, lambda_way: 0}}}}",
            (),
            "m.yaml:6: run 'a': loss.weight_lambda: expected a number >= 0.0; found -1",
        ),
        (
            "x: {runs: {a: {loss: {name: focal}}}}",
            (),
            "m.yaml:6: run 'a': loss: expected `name` to be one of 'ce', 'bce', 'rmi', 'aaf'; "
            "found 'focal'",
        ),
        (
            "x: {runs: {a: {modle: {name: deeplabv3}}}}",
            (),
            "m.yaml:6: run 'a': modle: expected a known key (data, eval, loss, model, seed, "
            "train); found 'modle'",
        ),
        (
            "x: {runs: {a: {data: {name: imagenet}}}}",
            (),
            "run 'a': data.name: expected one of 'camvid', 'voc2012', 'synthetic' or 'folder'",
        ),
        (
            "x: {runs: {a: {train: {iterations: ten}}}}",
            (),
            "run 'a': train.iterations: expected an integer; found 'ten'",
        ),
        (
            "x: {grid: {loss.radius: [1, 12]}, runs: {a: {loss: {name: rmi}}}}",
            (),
            "m.yaml:6: run 'a-radius=12': loss.radius: expected a number <= 10; found 12",
        ),
        ("x: {runz: {}}", (), "m.yaml:6: experiments.x.runz: expected a known key"),
        ("x: {crf: {on: a, iters: [0]}}", (), "crf.iters must be positive integers; found [0]"),
        (
            "x: {runs: {a: {}}, crf: {on: b}}",
            (),
            "experiments.x.crf.on: expected one of the experiment's runs (a); found 'b'",
        ),
        ("x: {seeds: [1, 1]}", (), "seeds must be a non-empty list of distinct integers"),
        ("x: {}", ("radius",), "--set 'radius': expected KEY=VALUE"),
        ("x: {}", (), None),
    ],
)
def test_errors_name_the_place_expected_and_found(
    body: str, overrides: tuple[str, ...], expected: str | None
) -> None:
    if expected is None:
        manifest(body).plan("x", overrides)
        return
    message = error_of(body, overrides)
    assert expected in message
    assert "\n" not in message


def test_unknown_experiment_lists_the_known_ones() -> None:
    message = error_of("x: {}\ny: {}", experiment="z")
    assert message == "m.yaml: no experiment 'z'; the manifest defines: x, y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("experiments: [\n", "bad.yaml:2: the manifest is not valid YAML"),
        ("experiments:\n  x: {}\n  x: {}\n", "bad.yaml:3: duplicate key 'experiments.x'"),
        ("- 1\n- 2\n", "bad.yaml:1: expected a mapping with `experiments:` at the top"),
        ("version: 2\nexperiments: {}\n", "bad.yaml:1: version: expected one of 1; found 2"),
    ],
)
def test_malformed_files(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match="^" + expected.replace("[", r"\[")):
        manifest_from_text(text, "bad.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest not found"):
        load_manifest(tmp_path / "nope.yaml")


def test_yaml_on_key_is_a_name_not_a_boolean() -> None:
    plan = manifest("x: {runs: {ce: {}}, crf: {on: ce}}").plan("x")
    assert plan.crf_steps[0].target.name == "ce"
