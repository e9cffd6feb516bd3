"""Yelp Open Dataset: ``yelp_academic_dataset_review.json`` and ``..._business.json`` (JSON lines)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from recxplore.data.sources.readers import (
    RawData,
    as_float,
    find_file,
    missing_files_error,
    open_text_lines,
    parse_json,
    require,
)
from recxplore.errors import DataError

URL = "https://www.yelp.com/dataset"
REVIEWS = "yelp_academic_dataset_review.json"
BUSINESS = "yelp_academic_dataset_business.json"


def locate(data_dir: Path) -> list[Path]:
    reviews, other = find_file(data_dir, [REVIEWS]), find_file(data_dir, [BUSINESS])
    return [p for p in (reviews, other) if p is not None] if reviews else []


def _time(value: Any, path: Path, lineno: int) -> float:
    try:
        when = dt.datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise DataError(
            f"{path}:{lineno}: field 'date' must be 'YYYY-MM-DD HH:MM:SS'; got {value!r}"
        ) from None
    return when.replace(tzinfo=dt.UTC).timestamp()


def _attributes(value: Any) -> Any:
    """Yelp stores attribute values as strings such as "True" or "u'free'"; keep the true ones."""
    if not isinstance(value, dict):
        return None
    kept = [
        name for name, v in value.items() if str(v).strip("u'\"") not in ("False", "None", "no")
    ]
    return kept or None


def _business(rec: dict[str, Any]) -> dict[str, Any]:
    cats = rec.get("categories")
    meta = {
        "name": rec.get("name"),
        "categories": [c.strip() for c in cats.split(",") if c.strip()]
        if isinstance(cats, str)
        else cats,
        "city": rec.get("city"),
        "state": rec.get("state"),
        "attributes": _attributes(rec.get("attributes")),
    }
    return {k: v for k, v in meta.items() if v}


def load_yelp(data_dir: Path) -> RawData:
    reviews = find_file(data_dir, [REVIEWS])
    if reviews is None:
        raise missing_files_error("yelp", data_dir, [REVIEWS, BUSINESS], URL)
    out = RawData([], [], [], [], {}, [reviews])
    for lineno, text in open_text_lines(reviews):
        rec = parse_json(reviews, lineno, text)
        out.users.append(str(require(rec, "user_id", reviews, lineno)))
        out.items.append(str(require(rec, "business_id", reviews, lineno)))
        out.ratings.append(
            as_float(require(rec, "stars", reviews, lineno), "stars", reviews, lineno)
        )
        out.timestamps.append(_time(require(rec, "date", reviews, lineno), reviews, lineno))
    business = find_file(data_dir, [BUSINESS])
    if business is None:
        raise DataError(f"yelp: {BUSINESS} not found in {data_dir}; download it from {URL}")
    out.files.append(business)
    for lineno, text in open_text_lines(business):
        rec = parse_json(business, lineno, text)
        out.item_meta[str(require(rec, "business_id", business, lineno))] = _business(rec)
    return out
