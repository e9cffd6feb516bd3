"""Typed configuration: one frozen dataclass per section, YAML loading, dotted overrides.

``fields`` holds the machinery (help texts, cache-key marks, components' settings), ``sections``
the ten sections, ``schema`` the whole config with its validation, YAML and ``describe``.
"""

from recxplore.config.fields import (
    KeyRule,
    Section,
    choice,
    component_fields,
    key_settings,
    option,
    section_dict,
)
from recxplore.config.schema import (
    SECTIONS,
    STATIC_EXTRACTORS,
    Config,
    dataset_name_problem,
    describe,
    dump,
    from_dict,
    load,
    neutral_keys,
    parse_override,
)
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

__all__ = [
    "SECTIONS",
    "STATIC_EXTRACTORS",
    "AdaptConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExtractConfig",
    "GenerateConfig",
    "KeyRule",
    "ModelConfig",
    "PathsConfig",
    "Section",
    "TextConfig",
    "TrainConfig",
    "TuneConfig",
    "choice",
    "component_fields",
    "dataset_name_problem",
    "describe",
    "dump",
    "from_dict",
    "key_settings",
    "load",
    "neutral_keys",
    "option",
    "parse_override",
    "section_dict",
]
