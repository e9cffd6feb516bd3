"""Name -> component tables. A component is declared once, in its own file, by one call:

    ADAPTERS.register("moe", build_moe, MoEConfig, help="UniSRec mixture of whitening experts")

An entry holds the name, the builder, and the component's own settings (a frozen dataclass, or
None when it has none). Config choices, their help and their settings come from here, so no
other list of names exists. Each field of a component's settings appears in its config
section as ``<name>_<field>`` (``adapt.moe_experts``), which keeps configs flat and readable.

The tables are declared here, in the core, so that the config can read them without importing
the components' packages at import time; each table names the one package whose files
register its entries, and imports that package the first time it is read.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    build: T
    config: Optional[type] = None  # the component's own settings (a frozen dataclass)
    help: str = ""
    requires: frozenset[str] = field(default_factory=frozenset)  # item inputs it needs
    version: int = 1  # bumped when the component computes something else for the same settings


class Registry(Generic[T]):
    """A lowercase, unique name -> entry table whose lookup errors list the valid names."""

    def __init__(self, kind: str, package: str):
        self.kind = kind
        self.package = package  # the package whose modules register this table's entries
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False

    def register(
        self,
        name: str,
        build: T,
        config: Optional[type] = None,
        help: str = "",
        requires: tuple[str, ...] = (),
        version: int = 1,
    ) -> T:
        if name != name.lower() or name in self._entries:
            raise ValueError(f"{self.kind} name {name!r} must be lowercase and unique")
        self._entries[name] = Entry(name, build, config, help, frozenset(requires), version)
        return build

    def _load(self) -> dict[str, Entry[T]]:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self.package)
        return self._entries

    def entry(self, name: str) -> Entry[T]:
        entries = self._load()
        if name not in entries:
            raise KeyError(
                f"unknown {self.kind} {name!r}; valid names are {', '.join(sorted(entries))}"
            )
        return entries[name]

    def __getitem__(self, name: str) -> T:
        return self.entry(name).build

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._load()))

    def entries(self) -> list[Entry[T]]:
        return [entry for _, entry in sorted(self._load().items())]


# Every table of swappable components, with the package that fills it.
DATASETS: Registry[Any] = Registry("dataset family", "recxplore.data.sources")
POOLINGS: Registry[Callable[..., Any]] = Registry("pooling", "recxplore.extract.pooling")
OBJECTIVES: Registry[Any] = Registry("tuning objective", "recxplore.tune.objectives")
ADAPTERS: Registry[Callable[..., Any]] = Registry("adapter", "recxplore.adapt.adapters")
FUSIONS: Registry[Callable[..., Any]] = Registry("fusion", "recxplore.adapt.fusions")
BACKBONES: Registry[Callable[..., Any]] = Registry("backbone", "recxplore.backbones")
LOSSES: Registry[Callable[..., Any]] = Registry("loss", "recxplore.train.losses")
