"""Steam (Kang & McAuley, ICDM 2018): reviews and game metadata as Python-literal lines.

Files: ``steam_reviews.json.gz`` (username, product_id, date 'YYYY-MM-DD', hours, ...) and
``steam_games.json.gz`` (id, app_name/title, genres, tags, developer, publisher, price, ...).
There is no rating; reviews carry only a date, so same-day ties keep the file order.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from recxplore.data.sources.readers import (
    RawData,
    find_file,
    missing_files_error,
    open_text_lines,
    parse_json_or_literal,
    require,
)
from recxplore.errors import DataError

URL = "https://cseweb.ucsd.edu/~jmcauley/datasets.html#steam_data"
REVIEWS, GAMES = "steam_reviews.json", "steam_games.json"


def locate(data_dir: Path) -> list[Path]:
    reviews, other = find_file(data_dir, [REVIEWS]), find_file(data_dir, [GAMES])
    return [p for p in (reviews, other) if p is not None] if reviews else []


def _date(value: Any, path: Path, lineno: int) -> float:
    try:
        day = dt.datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise DataError(
            f"{path}:{lineno}: field 'date' must be YYYY-MM-DD; got {value!r}"
        ) from None
    return day.timestamp()


def _listing(value: Any) -> Any:
    return [str(v) for v in value if v] if isinstance(value, list) else value


def _game(rec: dict[str, Any]) -> dict[str, Any]:
    price = rec.get("price")
    meta = {
        "title": rec.get("app_name") or rec.get("title"),
        "genres": _listing(rec.get("genres")),
        "tags": _listing(rec.get("tags")),
        "developer": rec.get("developer"),
        "publisher": rec.get("publisher"),
        "price": f"{price:.2f}" if isinstance(price, (int, float)) else price,
        "release_date": rec.get("release_date"),
        "specs": _listing(rec.get("specs")),
    }
    return {k: v for k, v in meta.items() if v}


def load_steam(data_dir: Path) -> RawData:
    reviews = find_file(data_dir, [REVIEWS])
    if reviews is None:
        raise missing_files_error("steam", data_dir, [REVIEWS + ".gz", GAMES + ".gz"], URL)
    out = RawData([], [], [], [], {}, [reviews])
    for lineno, text in open_text_lines(reviews):
        rec = parse_json_or_literal(reviews, lineno, text)
        user = rec.get("username") or rec.get("user_id")
        if not user:
            raise DataError(f"{reviews}:{lineno}: missing field 'username'")
        out.users.append(str(user))
        out.items.append(str(require(rec, "product_id", reviews, lineno)))
        out.ratings.append(float("nan"))
        out.timestamps.append(_date(require(rec, "date", reviews, lineno), reviews, lineno))
    games = find_file(data_dir, [GAMES])
    if games is not None:
        out.files.append(games)
        for lineno, text in open_text_lines(games):
            rec = parse_json_or_literal(games, lineno, text)
            if rec.get("id"):  # a few published game lines have no id; nothing can join them
                out.item_meta[str(rec["id"])] = _game(rec)
    return out
