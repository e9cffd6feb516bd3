"""Line readers for the published raw formats, with errors that name the file and line."""

from __future__ import annotations

import ast
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from recxplore.errors import DataError


@dataclass
class RawData:
    """Interactions as parallel columns plus item metadata, before any filtering.

    ``order`` is the position of each interaction in the source files; it breaks timestamp ties
    so that the chronological order is stable and documented.
    """

    users: list[str]
    items: list[str]
    ratings: list[float]
    timestamps: list[float]
    item_meta: dict[str, dict[str, Any]]
    files: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert len(self.users) == len(self.items) == len(self.ratings) == len(self.timestamps)

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.users, dtype=object),
            np.asarray(self.items, dtype=object),
            np.asarray(self.ratings, dtype=np.float64),
            np.asarray(self.timestamps, dtype=np.float64),
        )


def open_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line) from a plain or gzip file, UTF-8 strictly."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(
                        f"{path}:{lineno}: not valid UTF-8 (byte {raw[err.start]:#04x} "
                        f"at column {err.start + 1}); re-download the file or convert "
                        f"it to UTF-8"
                    ) from None
                text = text.rstrip("\r\n")
                if lineno == 1:
                    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
                if text.strip():
                    yield lineno, text
    except (OSError, EOFError, zlib.error) as err:
        if isinstance(err, FileNotFoundError):
            raise DataError(f"{path}: file not found") from None
        raise DataError(
            f"{path}: cannot be read ({err}); the file may be truncated or not "
            f"gzip-compressed despite its name"
        ) from None


def parse_json(path: Path, lineno: int, text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}:{lineno}: malformed JSON ({err.msg} at column {err.colno}); "
            f"expected one JSON object per line"
        ) from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    return record


def parse_python_literal(path: Path, lineno: int, text: str) -> dict[str, Any]:
    """Lines written with Python's repr() (Amazon 2014 metadata, Steam); never eval()."""
    try:
        record = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise DataError(
            f"{path}:{lineno}: malformed record ({type(err).__name__}); expected one "
            f"Python dict literal per line as published"
        ) from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a dict literal, got {type(record).__name__}")
    return record


def parse_json_or_literal(path: Path, lineno: int, text: str) -> dict[str, Any]:
    """Some mirrors re-encode the Python-literal files as JSON; accept both."""
    if text.lstrip().startswith('{"'):
        try:
            return parse_json(path, lineno, text)
        except DataError:
            pass
    return parse_python_literal(path, lineno, text)


def require(record: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    value = record.get(key)
    if value is None or value == "":
        raise DataError(
            f"{path}:{lineno}: missing field {key!r}; present fields are "
            f"{', '.join(sorted(record)) or 'none'}"
        )
    return value


def as_float(value: Any, key: str, path: Path, lineno: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}:{lineno}: field {key!r} must be a number; got {value!r}") from None


def find_file(data_dir: Path, names: list[str]) -> Optional[Path]:
    """The first of ``names`` (each also tried with and without .gz) present in ``data_dir``."""
    for name in names:
        for candidate in (name, name + ".gz", name.removesuffix(".gz")):
            path = data_dir / candidate
            if path.is_file():
                return path
    return None


def missing_files_error(dataset: str, data_dir: Path, names: list[str], url: str) -> DataError:
    return DataError(
        f"{dataset}: none of {', '.join(names)} found in {data_dir}; download them "
        f"from {url} into that folder (or pass --data-dir)"
    )
