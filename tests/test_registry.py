"""One registry type: every "name -> builder" table answers unknown names the same way."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from rmi_cli import config
from rmi_cli.errors import ConfigError, UserError
from rmi_cli.registry import Registry, UnknownName
from rmi_cli.report.kinds import TableKind


def test_entries_in_order_and_unknown_names_listed() -> None:
    colours: Registry[int] = Registry("colour")
    colours.register("red", 1)
    colours.decorator("green")(2)
    assert colours.names() == ("red", "green") and list(colours) == ["red", "green"]
    assert colours.get("green") == 2 and colours["red"] == 1 and "red" in colours
    with pytest.raises(UnknownName, match=r"^paint: unknown colour 'blue'; known: red, green$"):
        colours.get("blue", field="paint")
    with pytest.raises(ValueError, match="registered twice"):
        colours.register("red", 3)
    assert issubclass(UnknownName, ConfigError) and issubclass(UnknownName, UserError)


def test_lazy_entries_import_on_first_use() -> None:
    lazy: Registry[typing.Callable[..., object]] = Registry("thing")
    lazy.register_lazy("dumps", "json:dumps")
    assert "dumps" in lazy
    assert lazy.get("dumps")([1]) == "[1]"


def test_every_registry_has_the_names_users_write() -> None:
    from rmi_cli.data import DATASETS
    from rmi_cli.losses import LOSSES
    from rmi_cli.models import BACKBONES, MODELS
    from rmi_cli.report.kinds import TABLES

    assert LOSSES.names() == typing.get_args(config.LossName)
    assert MODELS.names() == typing.get_args(config.ModelName)
    assert BACKBONES.names() == typing.get_args(config.BackboneName)
    assert DATASETS.names() == typing.get_args(config.DatasetName)
    assert TABLES.names() == typing.get_args(TableKind)
    for registry in (LOSSES, MODELS, BACKBONES, DATASETS, TABLES):
        with pytest.raises(UnknownName, match="known: "):
            registry.get("nope")


def test_table_kinds_are_known_without_pandas() -> None:
    code = "import sys, rmi_cli.report.kinds as k; print(k.TABLES.names(), 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "('methods', 'per-class', 'ablation') False"
