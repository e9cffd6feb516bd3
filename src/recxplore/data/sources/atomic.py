"""RecBole atomic files: ``<name>.inter`` and optional ``<name>.item``, tab-separated, typed headers.

A header cell is ``field:type`` with type one of token, token_seq, float, float_seq. The
interaction file needs ``user_id`` and ``item_id``; ``rating`` and ``timestamp`` are optional.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from recxplore.data.sources.readers import RawData, open_text_lines
from recxplore.errors import DataError

log = logging.getLogger(__name__)

TYPES = ("token", "token_seq", "float", "float_seq")
URL = "https://github.com/RUCAIBox/RecSysDatasets (RecBole atomic files)"


def _header(path: Path, lineno: int, text: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for cell in text.split("\t"):
        name, sep, kind = cell.strip().partition(":")
        if not sep or kind not in TYPES:
            raise DataError(
                f"{path}:{lineno}: header cell {cell!r} must be field:type with type "
                f"one of {', '.join(TYPES)}"
            )
        if any(name == seen for seen, _ in fields):
            raise DataError(
                f"{path}:{lineno}: header names field {name!r} twice; each column needs its "
                f"own name"
            )
        fields.append((name, kind))
    return fields


def _value(kind: str, raw: str, path: Path, lineno: int, name: str) -> Any:
    if kind in ("token", "token_seq"):  # a token_seq stays its text: "Toy Story", not a list
        return raw
    try:
        return float(raw) if kind == "float" else [float(x) for x in raw.split()]
    except ValueError:
        raise DataError(
            f"{path}:{lineno}: field {name!r} is typed {kind} but holds {raw!r}"
        ) from None


def read_atomic_table(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """Return (field names, the rows as (line number, row dict), read one at a time): the
    header is checked at once, a row when it is reached."""
    lines = open_text_lines(path)
    try:
        lineno, head = next(lines)
    except StopIteration:
        raise DataError(f"{path}: empty file; expected a typed header line") from None
    fields = _header(path, lineno, head)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for lineno, text in lines:
            cells = text.split("\t")
            if len(cells) != len(fields):
                raise DataError(
                    f"{path}:{lineno}: {len(cells)} tab-separated values but the header "
                    f"has {len(fields)} fields"
                )
            yield (
                lineno,
                {
                    name: _value(kind, cell, path, lineno, name)
                    for (name, kind), cell in zip(fields, cells)
                    if cell != ""
                },
            )

    return [name for name, _ in fields], rows()


def read_atomic(
    inter_path: Path, item_path: Optional[Path], rename: Optional[dict[str, str]] = None
) -> RawData:
    """Read interactions and item attributes; ``rename`` maps item columns to attribute names."""
    names, rows = read_atomic_table(inter_path)
    for required in ("user_id", "item_id"):
        if required not in names:
            raise DataError(f"{inter_path}:1: header lacks {required!r}; found {', '.join(names)}")
    users, items, ratings, stamps = [], [], [], []
    for lineno, row in rows:
        for required in ("user_id", "item_id"):
            if required not in row:
                raise DataError(f"{inter_path}:{lineno}: missing field {required!r}")
        stamp = row.get("timestamp", 0.0)
        if not isinstance(stamp, float) or not math.isfinite(stamp):
            raise DataError(
                f"{inter_path}:{lineno}: timestamp {stamp!r} is not a finite number; "
                f"leave the cell empty or give the time of the interaction"
            )
        users.append(row["user_id"])
        items.append(row["item_id"])
        ratings.append(row.get("rating", float("nan")))
        stamps.append(stamp)
    meta: dict[str, dict[str, Any]] = {}
    files = [inter_path]
    if item_path is not None:
        files.append(item_path)
        item_names, item_rows = read_atomic_table(item_path)
        if "item_id" not in item_names:
            raise DataError(f"{item_path}:1: header lacks 'item_id'; found {', '.join(item_names)}")
        rename = rename or {}
        for lineno, row in item_rows:
            item_id = row.pop("item_id", None)
            if item_id is None:
                raise DataError(f"{item_path}:{lineno}: missing field 'item_id'")
            meta[item_id] = {rename.get(k, k): v for k, v in row.items()}
        if meta and not set(meta) & set(items):
            log.warning(
                "%s: none of its %d item ids occurs in %s, so no item has attributes (item "
                "texts and LLM features need them); check that both files use the same ids",
                item_path,
                len(meta),
                inter_path,
            )
    return RawData(users, items, ratings, stamps, meta, files)


def load_atomic(name: str, data_dir: Path) -> RawData:
    for folder in (data_dir / name, data_dir):
        inter = folder / f"{name}.inter"
        if inter.is_file():
            item = folder / f"{name}.item"
            return read_atomic(inter, item if item.is_file() else None)
    raise DataError(
        f"atomic:{name}: {name}.inter not found in {data_dir} or {data_dir / name}; "
        f"put the RecBole atomic files there (see {URL}) or pass --data-dir"
    )


def locate(name: str, data_dir: Path) -> list[Path]:
    for folder in (data_dir / name, data_dir):
        inter, item = folder / f"{name}.inter", folder / f"{name}.item"
        if inter.is_file():
            return [inter] + ([item] if item.is_file() else [])
    return []
