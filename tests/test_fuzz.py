"""Seeded, bounded fuzzing: every supported dataset format and the shipped config files, mutated,
end in success or in the project's own error, never in a traceback."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest

from recxplore import config
from recxplore.config import DataConfig
from recxplore.data.prepare import prepare
from recxplore.errors import RecxploreError

ROOT = Path(__file__).resolve().parents[1]
# Per format and per config file: a few seconds in all. FUZZ_CASES=500 FUZZ_SEED=7 python3 -m
# pytest tests/test_fuzz.py digs deeper.
MUTATIONS = int(os.environ.get("FUZZ_CASES", "25"))
SEED = os.environ.get("FUZZ_SEED", "0")


def _users(n: int = 4, per: int = 4):
    for u in range(n):
        for t in range(per):
            yield u, (u + 2 * t) % 6, 1_400_000_000 + 1000 * u + t


def samples() -> dict[str, dict[str, bytes]]:
    """dataset name -> {file name: bytes}, in each publisher's format."""
    out: dict[str, dict[str, bytes]] = {}
    a14 = [
        json.dumps({"reviewerID": f"U{u}", "asin": f"B{i}", "overall": 4.0, "unixReviewTime": t})
        for u, i, t in _users()
    ]
    m14 = [
        repr(
            {
                "asin": f"B{i}",
                "title": f"Item {i}",
                "price": 1.5,
                "brand": "K",
                "categories": [["Beauty", "Face"]],
            }
        )
        for i in range(6)
    ]
    out["amazon2014:Beauty"] = {
        "reviews_Beauty_5.json.gz": _gz(a14),
        "meta_Beauty.json.gz": _gz(m14),
    }
    a18 = [
        json.dumps({"reviewerID": f"U{u}", "asin": f"B{i}", "overall": 5.0, "unixReviewTime": t})
        for u, i, t in _users()
    ]
    m18 = [
        json.dumps(
            {
                "asin": f"B{i}",
                "title": f"Shirt {i}",
                "brand": "B",
                "description": ["a", "b"],
                "price": "$9.99",
            }
        )
        for i in range(6)
    ]
    out["amazon2018:AMAZON_FASHION"] = {
        "AMAZON_FASHION.json.gz": _gz(a18),
        "meta_AMAZON_FASHION.json.gz": _gz(m18),
    }
    a23 = [
        json.dumps(
            {
                "rating": 4.0,
                "parent_asin": f"P{i}",
                "asin": f"P{i}",
                "user_id": f"U{u}",
                "timestamp": t * 1000,
            }
        )
        for u, i, t in _users()
    ]
    m23 = [
        json.dumps(
            {
                "parent_asin": f"P{i}",
                "title": f"Conditioner {i}",
                "store": "H",
                "details": {"Brand": "H"},
                "categories": [],
            }
        )
        for i in range(6)
    ]
    out["amazon2023:All_Beauty"] = {
        "All_Beauty.jsonl.gz": _gz(a23),
        "meta_All_Beauty.jsonl": _plain(m23),
    }
    steam = [
        repr({"username": f"U{u}", "product_id": str(i), "date": "2017-12-17", "hours": 0.1})
        for u, i, _ in _users()
    ]
    games = [
        repr(
            {
                "id": str(i),
                "title": f"Game {i}",
                "genres": ["Action"],
                "tags": ["x"],
                "price": 4.99,
                "developer": "D",
            }
        )
        for i in range(6)
    ]
    out["steam"] = {"steam_reviews.json.gz": _gz(steam), "steam_games.json.gz": _gz(games)}
    yelp_r = [
        json.dumps(
            {
                "user_id": f"U{u}",
                "business_id": f"X{i}",
                "stars": 3.0,
                "date": f"2018-07-07 22:09:{t % 60:02d}",
            }
        )
        for u, i, t in _users()
    ]
    yelp_b = [
        json.dumps(
            {
                "business_id": f"X{i}",
                "name": f"Shop {i}",
                "city": "C",
                "categories": "Food, Bars",
                "attributes": {"Wifi": "True"},
            }
        )
        for i in range(6)
    ]
    out["yelp"] = {
        "yelp_academic_dataset_review.json": _plain(yelp_r),
        "yelp_academic_dataset_business.json": _plain(yelp_b),
    }
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"u{u}\ti{i}\t4\t{t}" for u, i, t in _users()]
    items = ["item_id:token\ttitle:token_seq\tgenres:token_seq"]
    items += [f"i{i}\tItem {i}\tg{i % 2}" for i in range(6)]
    out["atomic:fz"] = {"fz.inter": _plain(inter), "fz.item": _plain(items)}
    out["ml-1m"] = {
        "ml-1m/ratings.dat": _plain([f"{u + 1}::{i + 1}::5::{t}" for u, i, t in _users()]),
        "ml-1m/movies.dat": _plain([f"{i + 1}::Film {i} (199{i})::Drama|Comedy" for i in range(6)]),
    }
    out["ml-100k"] = {
        "ml-100k/u.data": _plain([f"{u + 1}\t{i + 1}\t4\t{t}" for u, i, t in _users()]),
        "ml-100k/u.item": _plain(
            [
                f"{i + 1}|Film {i} (199{i})|01-Jan-199{i}||http://x|"
                + "|".join("1" if g == i % 19 else "0" for g in range(19))
                for i in range(6)
            ]
        ),
    }
    return out


def _plain(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def _gz(lines: list[str]) -> bytes:
    return gzip.compress(_plain(lines), mtime=0)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random corruption of a file's bytes: flip, drop, duplicate, cut or splice."""
    if not data:
        return b"\x00"
    kind = rng.randrange(7)
    i = rng.randrange(len(data))
    if kind == 0:  # flip a byte
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if kind == 1:  # truncate
        return data[:i]
    if kind == 2:  # delete a span
        return data[:i] + data[i + rng.randrange(1, 40) :]
    if kind == 3:  # duplicate a span
        return data[:i] + data[i : i + 40] + data[i:]
    if kind == 4:  # splice in hostile bytes
        junk = rng.choice([b"\t", b"\n", b"::", b"|", b'"', b"{", b"nan", b"\xff\xfe", b"\ufeff"])
        return data[:i] + junk + data[i:]
    if kind == 5:  # empty the file
        return b""
    lines = data.split(b"\n")  # swap two lines
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return b"\n".join(lines)


def _mutated_inside(name: str, data: bytes, rng: random.Random) -> bytes:
    """Gzip files are mutated as they are (bad archives) or inside (bad content), half each."""
    if name.endswith(".gz") and rng.random() < 0.5:
        return gzip.compress(mutate(gzip.decompress(data), rng), mtime=0)
    return mutate(data, rng)


@pytest.mark.parametrize("dataset", sorted(samples()))
def test_mutated_datasets_never_end_in_a_traceback(dataset, tmp_path):
    files = samples()[dataset]
    rng = random.Random(f"{dataset}-{SEED}")
    outcomes = {"ok": 0, "error": 0}
    for case in range(MUTATIONS):
        folder = tmp_path / f"case{case}"
        victim = rng.choice(sorted(files))
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_mutated_inside(name, data, rng) if name == victim else data)
        cfg = DataConfig(name=dataset, data_dir=str(folder), filter="none", min_seq_len=1)
        try:
            prepare(cfg, tmp_path / "home", fresh=True)
            outcomes["ok"] += 1
        except RecxploreError:
            outcomes["error"] += 1
    assert sum(outcomes.values()) == MUTATIONS
    assert outcomes["error"] > 0  # the mutations reach the readers


@pytest.mark.parametrize("dataset", sorted(samples()))
def test_each_sample_is_a_valid_dataset(dataset, tmp_path):
    for name, data in samples()[dataset].items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    cfg = DataConfig(name=dataset, data_dir=str(tmp_path), filter="none", min_seq_len=1)
    ds, _ = prepare(cfg, tmp_path / "home")
    assert ds.n_users == 4 and ds.n_items == 6


CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_mutated_config_files_never_end_in_a_traceback(path, tmp_path):
    from recxplore.sweep import load_sweep

    rng = random.Random(f"{path.name}-{SEED}")
    original = path.read_bytes()
    for _ in range(MUTATIONS):
        target = tmp_path / path.relative_to(ROOT / "configs")
        target.parent.mkdir(parents=True, exist_ok=True)
        for other in CONFIGS:  # sweep files name base.yaml beside them
            (tmp_path / other.relative_to(ROOT / "configs")).parent.mkdir(
                parents=True, exist_ok=True
            )
            (tmp_path / other.relative_to(ROOT / "configs")).write_bytes(other.read_bytes())
        target.write_bytes(mutate(original, rng))
        try:
            if b"cells" in original or b"grid" in original or b"modules" in original:
                load_sweep(target)
            else:
                config.load(target)
        except RecxploreError:
            pass
