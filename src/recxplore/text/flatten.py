"""Attribute flattening (simple attribute concatenation, the paper's best prompt).

Two styles:
- ``kv``:       ``title: Toy Story; year: 1995; genres: Animation, Children's, Comedy``
- ``sentence``: LLMEmb's template, ``The movie item has the following attributes: \\n title is
  Toy Story; year is 1995; genres is Animation, Children's, Comedy``

Each value is cut to ``max_chars`` characters, newlines become spaces and ";" becomes "." (so the
separator stays unambiguous). Identifier and URL fields, URLs inside values and bare numbers
(outside year/price/date fields) are dropped. The result is a pure function of the item's
attributes and the settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Optional

_URL = re.compile(r"(https?://|www\.)\S+")
_NUMBER = re.compile(r"^[\d.,\s]+$")
_ID_KEY = re.compile(r"(^|_)(id|ids|asin|url|urls|image|images|imurl|imageurl)$", re.I)
NUMERIC_KEYS = ("year", "price", "release_date", "date")


def clean_value(key: str, value: Any, max_chars: int) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = [clean_value(key, v, max_chars) for v in value]
        text = ", ".join(p for p in parts if p)
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    else:
        text = str(value)
    text = _URL.sub("", text).replace("\n", " ").replace("\r", " ").replace(";", ".")
    text = re.sub(r"\s+", " ", text).strip(" ,")
    if not text or (_NUMBER.match(text) and key not in NUMERIC_KEYS):
        return None
    if len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text


def flatten(
    meta: dict[str, Any],
    *,
    attributes: Optional[Iterable[str]],
    style: str,
    max_chars: int,
    domain: str,
) -> str:
    """One item's text. ``attributes=None`` takes every attribute in its stored order."""
    keys = list(attributes) if attributes is not None else list(meta)
    pairs = []
    for key in keys:
        if _ID_KEY.search(key):
            continue
        value = clean_value(key, meta.get(key), max_chars)
        if value:
            pairs.append((key.replace("_", " "), value))
    if not pairs:
        return ""
    if style == "kv":
        return "; ".join(f"{k}: {v}" for k, v in pairs)
    body = "; ".join(f"{k} is {v}" for k, v in pairs)
    return f"The {domain} item has the following attributes: \n {body}"
