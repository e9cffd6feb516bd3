"""Dataset names -> raw loaders. A name is ``family`` or ``family:argument``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from recxplore.data.sources import amazon, atomic, movielens, steam, yelp
from recxplore.data.sources.readers import RawData
from recxplore.registry import DATASETS


@dataclass(frozen=True)
class Source:
    load: Callable[[str, Path, str], RawData]  # (argument, data_dir, source_file)
    locate: Callable[[str, Path, str], list[Path]]  # the files load would read ([] if missing)
    needs_argument: bool
    example: str
    text_attributes: Optional[tuple[str, ...]] = None  # flattened by default (None: all, in order)
    domain: Optional[str] = None  # the noun in "The <domain> item ..." (None: from the argument)


SOURCES = DATASETS  # family -> Source


def _movielens_load(name: str, argument: str, data_dir: Path, which: str) -> RawData:
    return movielens.load_movielens(name, data_dir)


def _movielens_locate(name: str, argument: str, data_dir: Path, which: str) -> list[Path]:
    return movielens.locate(name, data_dir)


for _name in ("ml-100k", "ml-1m"):
    SOURCES.register(
        _name,
        Source(
            load=functools.partial(_movielens_load, _name),
            locate=functools.partial(_movielens_locate, _name),
            needs_argument=False,
            example=_name,
            text_attributes=("title", "year", "genres"),
            domain="movie",
        ),
    )
for _release, _example in (
    ("amazon2014", "Beauty"),
    ("amazon2018", "AMAZON_FASHION"),
    ("amazon2023", "All_Beauty"),
):
    SOURCES.register(
        _release,
        Source(
            load=functools.partial(amazon.load_amazon, _release),
            locate=functools.partial(amazon.locate, _release),
            needs_argument=True,
            example=f"{_release}:{_example}",
            text_attributes=("title", "brand", "categories", "price", "description"),
        ),
    )
SOURCES.register(
    "steam",
    Source(
        load=lambda arg, d, which: steam.load_steam(d),
        locate=lambda arg, d, which: steam.locate(d),
        needs_argument=False,
        example="steam",
        text_attributes=("title", "genres", "tags", "developer", "publisher", "price"),
        domain="game",
    ),
)
SOURCES.register(
    "yelp",
    Source(
        load=lambda arg, d, which: yelp.load_yelp(d),
        locate=lambda arg, d, which: yelp.locate(d),
        needs_argument=False,
        example="yelp",
        text_attributes=("name", "categories", "city", "attributes"),
        domain="business",
    ),
)
SOURCES.register(
    "atomic",
    Source(
        load=lambda arg, d, which: atomic.load_atomic(arg, d),
        locate=lambda arg, d, which: atomic.locate(arg, d),
        needs_argument=True,
        example="atomic:my-dataset",
    ),
)

# The paper's datasets and the offline ones, listed by `recxplore datasets`.
LISTED = [
    "ml-100k",
    "ml-1m",
    "amazon2014:Beauty",
    "amazon2014:Video_Games",
    "amazon2018:AMAZON_FASHION",
    "amazon2023:All_Beauty",
    "steam",
    "yelp",
]


def source_of(name: str) -> Source:
    return SOURCES[split_name(name)[0]]


def split_name(name: str) -> tuple[str, str]:
    family, _, argument = name.partition(":")
    return family, argument


def load_raw(name: str, data_dir: Path, source_file: str = "auto") -> RawData:
    family, argument = split_name(name)
    return SOURCES[family].load(argument, data_dir, source_file)


def locate(name: str, data_dir: Path, source_file: str = "auto") -> list[Path]:
    """The raw files ``load_raw`` would read, without reading them; [] when absent."""
    family, argument = split_name(name)
    return SOURCES[family].locate(argument, data_dir, source_file)


def listed_datasets(data_dir: Path) -> list[str]:
    """The listed names plus every RecBole atomic dataset found in ``data_dir``."""
    names = list(LISTED)
    if data_dir.is_dir():
        for inter in sorted(data_dir.glob("*.inter")) + sorted(data_dir.glob("*/*.inter")):
            names.append(f"atomic:{inter.stem}")
    return list(dict.fromkeys(names))
