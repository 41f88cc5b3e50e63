"""One registry type for every "name -> builder" table: losses, models, backbones, datasets,
table kinds. Names are spelled as users write them in YAML or on the command line; an unknown
name is one `UnknownName` error that lists the known ones, whichever registry it came from.

An entry may be registered lazily as "module:attribute", so that the names (for CLI choices and
validation) are known without importing what they build (torch, pandas).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from rmi_cli.errors import ConfigError

T = TypeVar("T")


class UnknownName(ConfigError):
    """A name no entry of a registry has (the message lists the known ones)."""


@dataclass(frozen=True)
class _Lazy:
    target: str  # "module:attribute"

    def load(self) -> object:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


class Registry(Generic[T]):
    """Name -> T, in registration order. `kind` names what the entries are ("loss")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | _Lazy] = {}

    def register(self, name: str, entry: T) -> T:
        """Add `entry` under `name` (a name is registered once)."""
        self._add(name, entry)
        return entry

    def register_lazy(self, name: str, target: str) -> None:
        """Add `name` now; import "module:attribute" the first time `get(name)` is called."""
        self._add(name, _Lazy(target))

    def decorator(self, name: str) -> Callable[[T], T]:
        """`@REGISTRY.decorator("name")` registers what it decorates."""
        return lambda entry: self.register(name, entry)

    def get(self, name: str, *, field: str | None = None) -> T:
        """The entry of `name`; `UnknownName` (naming `field` when given) when there is none."""
        if name not in self._entries:
            where = f"{field}: " if field else ""
            raise UnknownName(
                f"{where}unknown {self.kind} {name!r}; known: {', '.join(self._entries)}"
            )
        entry = self._entries[name]
        if isinstance(entry, _Lazy):
            loaded = cast(T, entry.load())
            self._entries[name] = loaded
            return loaded
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    def _add(self, name: str, entry: T | _Lazy) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
