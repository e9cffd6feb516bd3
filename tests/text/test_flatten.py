from recxplore.config import TextConfig
from recxplore.text.flatten import clean_value, flatten
from recxplore.text.items import text_settings

META = {
    "title": "Lipstick; Red\nMatte",
    "brand": "Kiss",
    "asin": "B000123",
    "imUrl": "http://x/y.jpg",
    "price": "8.99",
    "salesRank": "402875",
    "categories": ["Beauty", "Makeup"],
    "description": "See https://shop.example/x now",
}


def test_sentence_style_is_llmemb_template():
    text = flatten(
        META,
        attributes=["title", "brand", "categories"],
        style="sentence",
        max_chars=100,
        domain="beauty",
    )
    assert text == (
        "The beauty item has the following attributes: \n title is Lipstick. Red "
        "Matte; brand is Kiss; categories is Beauty, Makeup"
    )


def test_kv_style_all_attributes_drops_ids_urls_and_numeric_noise():
    text = flatten(META, attributes=None, style="kv", max_chars=100, domain="x")
    assert text == (
        "title: Lipstick. Red Matte; brand: Kiss; price: 8.99; "
        "categories: Beauty, Makeup; description: See now"
    )


def test_character_cap_and_order():
    text = flatten(
        {"b": "x" * 50, "a": "hello"}, attributes=["a", "b"], style="kv", max_chars=10, domain="x"
    )
    assert text == "a: hello; b: xxxxxxxxxx"


def test_missing_attributes_give_empty_text():
    assert (
        flatten({"title": None}, attributes=["title", "brand"], style="kv", max_chars=5, domain="x")
        == ""
    )
    assert clean_value("year", 1995, 10) == "1995"


def test_source_defaults_and_overrides():
    assert text_settings(TextConfig(), "ml-1m")["attributes"] == ["title", "year", "genres"]
    assert text_settings(TextConfig(), "amazon2014:Video_Games")["domain"] == "video games"
    assert text_settings(TextConfig(), "atomic:x")["attributes"] is None
    custom = text_settings(TextConfig(attributes=["title"], domain="film"), "ml-1m")
    assert custom["attributes"] == ["title"] and custom["domain"] == "film"
