"""The machinery of config sections: fields with help and a cache-key mark, components'
settings inside a section, and the flat view of a section that cache keys and YAML see.

A field that chooses a component (``adapt.adapter``, ``model.backbone``...) names its registry;
the choices, their help and the component's own settings come from there. A component's
settings are written flat in its section, ``<component>_<setting>`` (``adapt.moe_experts``).
A field whose value cannot change a result (threads, progress, where files live) says so once,
with ``key=False``; ``key_settings`` is the one place that reads the mark.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from recxplore.registry import Registry

# In the cache key: always (True), never (False), when the predicate on the section holds, or
# RESOLVED: the stage that reads it puts the value it resolved to (``auto`` -> ``bfloat16``) in
# its key itself; such a setting changes results, so it is not neutral.
RESOLVED = "resolved"
KeyRule = Union[bool, str, Callable[[Any], bool]]


def option(
    default: Any,
    help: str,
    key: KeyRule = True,
    check: Optional[Callable[[Any], Optional[str]]] = None,
    **bounds: Any,
) -> Any:
    """A dataclass field with a one-line help text (shown by ``recxplore config``), whether it
    can change a result (``key``), a value check (returns what is wrong, or None) and numeric
    bounds (``ge``, ``gt``, ``le``, ``lt``)."""
    meta = {"help": help, "key": key, "check": check, **bounds}
    if isinstance(default, list):
        return field(default_factory=functools.partial(list, default), metadata=meta)
    return field(default=default, metadata=meta)


DEVICE = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def device_problem(value: str) -> Optional[str]:
    """None for a device torch can name (auto, cpu, cuda, cuda:N, mps), else what is wrong."""
    if DEVICE.fullmatch(value):
        return None
    return f"must be auto, cpu, cuda, cuda:N or mps; got {value!r}"


def choice(table: Registry[Any], default: Any, help: str, key: KeyRule = True) -> Any:
    """A field whose value is a name (or a list of names) registered in ``table``."""
    meta = {"help": help, "key": key, "registry": table}
    if isinstance(default, list):
        return field(default_factory=functools.partial(list, default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class Section:
    """Base of every section: holds the settings of the components its choice fields name."""

    components: dict[str, Any] = field(
        default_factory=dict, repr=False, metadata={"internal": True}
    )

    def __post_init__(self) -> None:
        # Every component with settings has them, given or default, so equal configs compare
        # equal however they were made.
        filled = {
            entry.name: self.components.get(entry.name) or entry.config()
            for table in tables(type(self))
            for entry in table.entries()
            if entry.config
        }
        object.__setattr__(self, "components", filled)

    def options(self, name: str) -> Any:
        """The settings of component ``name`` (its config dataclass; None when it has none)."""
        if name in self.components:
            return self.components[name]
        if any(name in table for table in tables(type(self))):
            return None
        raise KeyError(f"{type(self).__name__}: no component {name!r}")


def own_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def tables(cls: type) -> list[Registry[Any]]:
    return [f.metadata["registry"] for f in own_fields(cls) if "registry" in f.metadata]


def component_fields(cls: type) -> dict[str, tuple[str, dataclasses.Field[Any]]]:
    """``<component>_<setting>`` -> (component, field) for every component a section's choice
    fields can name."""
    out = {}
    for table in tables(cls):
        for entry in table.entries():
            for f in dataclasses.fields(entry.config) if entry.config else ():
                out[f"{entry.name}_{f.name}"] = (entry.name, f)
    return out


def selected(section: Section) -> set[str]:
    """The components the section's choice fields name (a list field names several)."""
    names: set[str] = set()
    for f in own_fields(type(section)):
        if "registry" in f.metadata:
            value = getattr(section, f.name)
            names.update(value if isinstance(value, list) else [value])
    return names


def section_dict(section: Section, keyed: bool = False) -> dict[str, Any]:
    """The section as a flat mapping (own fields, then each component's settings); with
    ``keyed``, only what can change a result, as cache keys see it (so no settings of a
    component the section does not choose)."""
    out: dict[str, Any] = {}
    for f in own_fields(type(section)):
        if not keyed or _in_key(f, section):
            out[f.name] = _plain(getattr(section, f.name))
    chosen = selected(section) if keyed else set()
    for flat, (name, f) in component_fields(type(section)).items():
        settings = section.options(name)
        if not keyed or (name in chosen and _in_key(f, settings)):
            out[flat] = _plain(getattr(settings, f.name))
    return out


def key_settings(section: Section) -> dict[str, Any]:
    """The settings of ``section`` that can change a result: the one reader of ``key=``."""
    return section_dict(section, keyed=True)


def _in_key(f: dataclasses.Field[Any], owner: Any) -> bool:
    rule = f.metadata.get("key", True)
    if rule == RESOLVED:
        return False
    return bool(rule(owner)) if callable(rule) else bool(rule)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
