"""Amazon review datasets in their three published releases (2014, 2018, 2023).

File names are the publishers'; ``<Cat>`` is the category as it appears in them (``Beauty``,
``Video_Games``, ``AMAZON_FASHION``, ``All_Beauty``). Item metadata is normalised to
title, brand, categories, price, description (+ features, details where published); identifiers,
URLs, images, sales ranks and related-item lists are dropped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from recxplore.data.sources.readers import (
    RawData,
    as_float,
    find_file,
    missing_files_error,
    open_text_lines,
    parse_json,
    parse_json_or_literal,
    require,
)
from recxplore.errors import DataError

URLS = {
    "amazon2014": "https://jmcauley.ucsd.edu/data/amazon/links.html",
    "amazon2018": "https://nijianmo.github.io/amazon/index.html",
    "amazon2023": "https://amazon-reviews-2023.github.io/",
}


def interaction_names(release: str, cat: str, which: str) -> list[str]:
    """Candidate interaction files in preference order for ``data.source_file``."""
    if release == "amazon2023":
        return [f"{cat}.jsonl"]
    core5, reviews = (
        (f"reviews_{cat}_5.json", f"reviews_{cat}.json")
        if release == "amazon2014"
        else (f"{cat}_5.json", f"{cat}.json")
    )
    ratings = f"ratings_{cat}.csv" if release == "amazon2014" else f"{cat}.csv"
    return {
        "auto": [core5, reviews, ratings],
        "core5": [core5],
        "reviews": [reviews],
        "ratings": [ratings],
    }[which]


def meta_name(release: str, cat: str) -> str:
    return f"meta_{cat}.jsonl" if release == "amazon2023" else f"meta_{cat}.json"


def locate(release: str, cat: str, data_dir: Path, which: str = "auto") -> list[Path]:
    inter = find_file(data_dir, interaction_names(release, cat, which))
    meta = find_file(data_dir, [meta_name(release, cat)])
    return [p for p in (inter, meta) if p is not None] if inter else []


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if v)
    value = str(value).strip()
    return value or None


def _categories(value: Any) -> Optional[list[str]]:
    """2014 nests lists of category paths; 2018/2023 give one flat path."""
    if not value:
        return None
    flat: list[str] = []
    for part in value if isinstance(value, list) else [value]:
        for cat in part if isinstance(part, list) else [part]:
            cat = str(cat).strip()
            if cat and cat not in flat:
                flat.append(cat)
    return flat or None


def _price(value: Any) -> Optional[str]:
    if value in (None, "", "None"):
        return None
    if isinstance(value, (int, float)):
        return f"{value:.2f}"
    text = str(value).strip()
    return text if text.startswith("$") and len(text) < 20 else None  # drops HTML fragments


def _meta_record(release: str, rec: dict[str, Any]) -> dict[str, Any]:
    meta = {
        "title": _text(rec.get("title")),
        "brand": _text(rec.get("brand") or rec.get("store")),
        "categories": _categories(rec.get("categories") or rec.get("category")),
        "price": _price(rec.get("price")),
        "description": _text(rec.get("description")),
    }
    if release != "amazon2014":
        meta["features"] = _text(rec.get("feature") or rec.get("features"))
        meta["main_category"] = _text(rec.get("main_cat") or rec.get("main_category"))
    if release == "amazon2023" and isinstance(rec.get("details"), dict):
        meta["details"] = "; ".join(f"{k}: {v}" for k, v in rec["details"].items() if v)
    return {k: v for k, v in meta.items() if v}


def _read_meta(release: str, path: Path) -> dict[str, dict[str, Any]]:
    key = "parent_asin" if release == "amazon2023" else "asin"
    parse: Callable = parse_json if release == "amazon2023" else parse_json_or_literal
    meta = {}
    for lineno, text in open_text_lines(path):
        rec = parse(path, lineno, text)
        meta[str(require(rec, key, path, lineno))] = _meta_record(release, rec)
    return meta


def _read_ratings_csv(release: str, path: Path, out: RawData) -> None:
    """Ratings-only CSVs have no header: 2014 user,item,rating,time; 2018 item,user,rating,time."""
    for lineno, line in open_text_lines(path):
        cells = next(csv.reader(io.StringIO(line)))
        if len(cells) != 4:
            raise DataError(
                f"{path}:{lineno}: expected 4 comma-separated values "
                f"(user,item,rating,timestamp); got {len(cells)}"
            )
        user, item = (cells[0], cells[1]) if release == "amazon2014" else (cells[1], cells[0])
        out.users.append(user)
        out.items.append(item)
        out.ratings.append(as_float(cells[2], "rating", path, lineno))
        out.timestamps.append(as_float(cells[3], "timestamp", path, lineno))


def _read_reviews(release: str, path: Path, out: RawData) -> None:
    if release == "amazon2023":
        fields, scale = ("user_id", "parent_asin", "rating", "timestamp"), 1e-3  # ms -> s
    else:
        fields, scale = ("reviewerID", "asin", "overall", "unixReviewTime"), 1.0
    user_key, item_key, rating_key, time_key = fields
    for lineno, text in open_text_lines(path):
        rec = parse_json_or_literal(path, lineno, text)
        out.users.append(str(require(rec, user_key, path, lineno)))
        out.items.append(str(require(rec, item_key, path, lineno)))
        out.ratings.append(
            as_float(require(rec, rating_key, path, lineno), rating_key, path, lineno)
        )
        out.timestamps.append(
            as_float(require(rec, time_key, path, lineno), time_key, path, lineno) * scale
        )


def load_amazon(release: str, cat: str, data_dir: Path, which: str = "auto") -> RawData:
    names = interaction_names(release, cat, which)
    inter = find_file(data_dir, names)
    if inter is None:
        raise missing_files_error(f"{release}:{cat}", data_dir, names, URLS[release])
    out = RawData([], [], [], [], {}, [inter])
    if inter.name.removesuffix(".gz").endswith(".csv"):
        _read_ratings_csv(release, inter, out)
    else:
        _read_reviews(release, inter, out)
    meta_path = find_file(data_dir, [meta_name(release, cat)])
    if meta_path is not None:
        out.item_meta = _read_meta(release, meta_path)
        out.files.append(meta_path)
    return out
