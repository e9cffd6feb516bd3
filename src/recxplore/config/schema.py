"""The whole config: its sections, validation (every problem at once), YAML and overrides.

Every problem (unknown key, wrong type, value out of range, cross-field conflict) is collected
and reported at once in a ``ConfigError``, so a user fixes a config in one pass.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from recxplore import registry
from recxplore.config.fields import component_fields, own_fields, section_dict, tables
from recxplore.config.sections import (
    AdaptConfig,
    DataConfig,
    EvalConfig,
    ExtractConfig,
    GenerateConfig,
    ModelConfig,
    PathsConfig,
    TextConfig,
    TrainConfig,
    TuneConfig,
)
from recxplore.errors import ConfigError

SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "text": TextConfig,
    "generate": GenerateConfig,
    "tune": TuneConfig,
    "extract": ExtractConfig,
    "adapt": AdaptConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "paths": PathsConfig,
}


@dataclass(frozen=True, kw_only=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: section_dict(getattr(self, name)) for name in SECTIONS}

    def replace(self, **overrides: Any) -> Config:
        """A validated copy with dotted overrides: ``cfg.replace(**{"train.seed": 43})``."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            raw.setdefault(section, {})[key] = value
        return from_dict(raw)


def neutral_keys() -> set[tuple[str, str]]:
    """(section, key) of every setting marked ``key=False``: what cannot change a result."""
    out = set()
    for name, cls in SECTIONS.items():
        out |= {(name, f.name) for f in own_fields(cls) if f.metadata.get("key") is False}
        out |= {
            (name, flat)
            for flat, (_, f) in component_fields(cls).items()
            if f.metadata.get("key") is False
        }
    return out


# ---------------------------------------------------------------------------------------------
# Validation


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true/false",
        type(None): "null",
    }.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """Return (ok, value converted to tp). Ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return (value in typing.get_args(tp), value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, converted = _coerce(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        (item_tp,) = typing.get_args(tp)
        out = []
        for v in value:
            ok, converted = _coerce(v, item_tp)
            if not ok:
                return False, value
            out.append(converted)
        return True, out
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    raise TypeError(f"unsupported config type {tp}")  # internal: a new field type needs support


def _range_problem(key: str, value: Any, meta: dict[str, Any]) -> Optional[str]:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    for bound, test, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        if bound in meta and not test(value, meta[bound]):
            return f"{key}: must be {word} {meta[bound]}; got {value!r}"
    return None


def _check_values(
    prefix: str, cls: type, values: dict[str, Any], problems: list[str]
) -> Optional[Any]:
    """``cls(**values)`` after type and range checks; None (with problems added) if any fail."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in own_fields(cls)}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in values.items():
        ok_value, converted = _coerce(value, hints[key])
        if not ok_value:
            problems.append(f"{prefix}{key}: must be {_type_name(hints[key])}; got {value!r}")
            ok = False
            continue
        problem = _range_problem(f"{prefix}{key}", converted, dict(fields[key].metadata))
        check = fields[key].metadata.get("check")
        if problem is None and check is not None and (what := check(converted)):
            problem = f"{prefix}{key}: {what}"
        if problem:
            problems.append(problem)
            ok = False
            continue
        kwargs[key] = _like_default(converted, fields[key].default)
    if not ok:
        return None
    try:
        return cls(**kwargs)
    except ConfigError as err:  # cross-field checks in __post_init__
        problems.extend(err.problems)
        return None


def _build_section(name: str, cls: type, values: Any, problems: list[str]) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        problems.append(f"{name}: must be a mapping of keys to values; got {values!r}")
        return None
    own = {f.name for f in own_fields(cls)}
    routed = component_fields(cls)
    mine: dict[str, Any] = {}
    theirs: dict[str, dict[str, Any]] = {}
    ok = True
    for key, value in values.items():
        if key in own:
            mine[key] = value
        elif key in routed:
            component, f = routed[key]
            theirs.setdefault(component, {})[f.name] = value
        else:
            problems.append(
                f"{name}.{key}: unknown key; valid keys are {', '.join(sorted(own | set(routed)))}"
            )
            ok = False
    components: dict[str, Any] = {}
    for component, given in theirs.items():
        settings_cls = next(t.entry(component).config for t in tables(cls) if component in t)
        assert settings_cls is not None  # routed keys come from entries with settings
        built = _check_values(f"{name}.{component}_", settings_cls, given, problems)
        ok = ok and built is not None
        components[component] = built
    section = _check_values(f"{name}.", cls, mine, problems)
    if not ok or section is None:
        return None
    return dataclasses.replace(section, components=components) if components else section


def _like_default(value: Any, default: Any) -> Any:
    """A number written as its field's default is written (32 where the default is 32, 2.0
    where it is 2.0), so that a value equal to the default, given or not, and a config
    rebuilt by ``replace`` hash to the same cache keys."""
    if isinstance(value, bool) or isinstance(default, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(default, int) and float(value).is_integer():
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _check_names(raw: dict[str, Any], problems: list[str]) -> None:
    """Registry names, checked on the raw values so they show even when a section has errors."""

    def value(section: str, key: str) -> Any:
        given = raw.get(section) if isinstance(raw.get(section), dict) else {}
        return given.get(key, getattr(SECTIONS[section](), key))

    for section, cls in SECTIONS.items():
        for f in own_fields(cls):
            table = f.metadata.get("registry")
            if table is None:
                continue
            given = value(section, f.name)
            names = given if isinstance(given, list) else [given]
            for name in names:
                if isinstance(name, str) and name not in table:
                    problems.append(
                        f"{section}.{f.name}: unknown {table.kind}; valid names are "
                        f"{', '.join(table)}; got {name!r}"
                    )
                elif not isinstance(name, str):
                    problems.append(
                        f"{section}.{f.name}: must be a {table.kind} name "
                        f"({', '.join(table)}); got {name!r}"
                    )
    name = value("data", "name")
    problem = dataset_name_problem(name) if isinstance(name, str) else None
    if problem:
        problems.append(f"data.name: {problem}")


def dataset_name_problem(name: str) -> Optional[str]:
    """None if ``name`` is a registered family with the argument it needs, else what is wrong."""
    family, _, argument = name.partition(":")
    if family not in registry.DATASETS:
        examples = ", ".join(e.build.example for e in registry.DATASETS.entries())
        return f"unknown dataset {name!r}; valid forms are {examples}"
    source = registry.DATASETS[family]
    if source.needs_argument and not argument:
        return f"{family} needs a name after a colon, e.g. {source.example}; got {name!r}"
    if not source.needs_argument and argument:
        return f"{family} takes no ':' argument; got {name!r}"
    return None


STATIC_EXTRACTORS = ("tfidf-svd",)  # extractors that are not neural networks


def _check_cross_sections(cfg: Config, problems: list[str]) -> None:
    if (cfg.tune.stages or cfg.tune.adapter) and cfg.extract.model in STATIC_EXTRACTORS:
        problems.append(
            f"tune.stages: extract.model={cfg.extract.model!r} is not a neural "
            f"network and cannot be tuned; use [] or a transformers extractor"
        )
    if cfg.extract.pool_span == "item" and cfg.extract.model in STATIC_EXTRACTORS:
        problems.append(
            f"extract.pool_span: extract.model={cfg.extract.model!r} has no tokens to pool; "
            f"use 'all' or a transformers extractor"
        )
    if (
        cfg.adapt.fusion == "llmesr"
        and cfg.adapt.options("llmesr").distill_weight > 0
        and cfg.extract.model in STATIC_EXTRACTORS
    ):
        problems.append(
            f"adapt.fusion=llmesr: its self-distillation embeds each user's history with the "
            f"extractor, and extract.model={cfg.extract.model!r} embeds only the item texts it "
            f"was fitted on; choose a transformers extractor (e.g. smollm2-135m or minilm), or "
            f"set adapt.llmesr_distill_weight=0 for the dual view without it"
        )
    if cfg.train.loss in ("ce", "in_batch") and cfg.train.num_negatives is not None:
        problems.append(
            f"train.num_negatives: not used by train.loss={cfg.train.loss!r} (its negatives are "
            f"{'all items' if cfg.train.loss == 'ce' else 'the batch targets'}); remove it or "
            f"choose loss 'bce' or 'sampled'"
        )
    if cfg.train.sparse_items:
        _check_sparse_items(cfg, problems)
    if not _is_metric_name(cfg.train.select_metric, cfg.eval.ks):
        problems.append(
            f"train.select_metric: must be HR@K, NDCG@K or MRR@K with K in eval.ks="
            f"{cfg.eval.ks}; got {cfg.train.select_metric!r}"
        )


def _check_sparse_items(cfg: Config, problems: list[str]) -> None:
    tc = cfg.train
    if cfg.adapt.fusion != "id":
        problems.append(
            f"train.sparse_items: only the ID-only item table (adapt.fusion=id) takes sparse "
            f"gradients; adapt.fusion={cfg.adapt.fusion!r} computes its vectors; remove the setting"
        )
    if "whole_table" in registry.LOSSES.entry(tc.loss).requires:
        problems.append(
            f"train.sparse_items: train.loss={tc.loss!r} reads every item's vector each step, so "
            f"its gradient is dense; choose bce, sampled or in_batch"
        )
    if tc.weight_decay or tc.grad_clip:
        problems.append(
            "train.sparse_items: SparseAdam has no weight decay and sparse gradients are not "
            "clipped; set train.weight_decay=0 and leave train.grad_clip unset"
        )


def _is_metric_name(name: str, ks: list[int]) -> bool:
    metric, _, k = name.partition("@")
    return metric in ("HR", "NDCG", "MRR") and k.isdigit() and int(k) in ks


_EXPONENT_FLOAT = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=0.01"`` -> (["train", "lr"], 0.01). Values are parsed as YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"override {text!r}: expected section.key=value, e.g. train.seed=43"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError([f"override {text!r}: the value is not valid YAML ({err})"]) from None
    if isinstance(value, str) and _EXPONENT_FLOAT.match(value.strip()):
        value = float(value)  # YAML 1.1 reads 2e-4 (no dot) as a string; people write it
    return key.strip().split("."), value


def from_dict(raw: dict[str, Any], overrides: Optional[list[str]] = None) -> Config:
    """Validate a nested mapping plus dotted overrides into a ``Config``; all problems at once."""
    problems: list[str] = []
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for text in overrides or []:
        try:
            path, value = parse_override(text)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        if len(path) != 2:
            problems.append(
                f"override {text!r}: expected exactly section.key, e.g. model.hidden=64"
            )
            continue
        section, key = path
        if not isinstance(merged.get(section, {}), dict):
            continue  # reported below as a malformed section
        merged.setdefault(section, {})[key] = value
    built: dict[str, Any] = {}
    for name, values in merged.items():
        if name not in SECTIONS:
            problems.append(f"{name}: unknown section; valid sections are {', '.join(SECTIONS)}")
            continue
        built[name] = _build_section(name, SECTIONS[name], values, problems)
    _check_names(merged, problems)
    if problems:
        raise ConfigError(problems)
    cfg = Config(**built)
    _check_cross_sections(cfg, problems)
    if problems:
        raise ConfigError(problems)
    return cfg


def load(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> Config:
    """Load a YAML config file (or the embedded defaults when ``path`` is None)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                [
                    f"config file {path}: not found; pass an existing YAML file or "
                    f"omit --config for the defaults"
                ]
            )
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError([f"config file {path}: not valid YAML ({err})"]) from None
        if not isinstance(raw, dict):
            raise ConfigError(
                [f"config file {path}: must be a mapping of sections; got {type(raw).__name__}"]
            )
    return from_dict(raw, overrides)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _field_line(key: str, tp: Any, f: dataclasses.Field[Any], default: Any) -> str:
    table = f.metadata.get("registry")
    kind = _type_name(tp)
    if table is not None:
        names = "one of " + ", ".join(repr(n) for n in table)
        kind = f"a list, each {names}" if typing.get_origin(tp) is list else names
    return f"  {key} ({kind}, default {default!r}): {f.metadata.get('help', '')}"


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    assert f.default_factory is not dataclasses.MISSING
    return f.default_factory()


def describe() -> str:
    """Every section and key with its type, default and help, for ``--help``-style output; a
    choice lists its registered names, and each component's settings follow it."""
    lines = []
    for name, cls in SECTIONS.items():
        lines.append(f"{name}:")
        hints = typing.get_type_hints(cls)
        for f in own_fields(cls):
            lines.append(_field_line(f.name, hints[f.name], f, _default(f)))
            table = f.metadata.get("registry")
            for entry in table.entries() if table is not None else ():
                lines.append(f"    {entry.name}: {entry.help}")
                settings = entry.config
                for sf in dataclasses.fields(settings) if settings else ():
                    lines.append(
                        "  "
                        + _field_line(
                            f"{entry.name}_{sf.name}",
                            typing.get_type_hints(settings)[sf.name],
                            sf,
                            _default(sf),
                        )
                    )
    return "\n".join(lines)
