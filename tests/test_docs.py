"""The documentation covers every config key, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

from recxplore import config

ROOT = Path(__file__).resolve().parents[1]


def docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


def test_every_config_key_is_documented():
    text = docs_text()
    missing = [
        f"{section}.{key}"
        for section, cls in config.SECTIONS.items()
        for key in config.section_dict(cls())
        if not re.search(rf"`{re.escape(section)}\.{re.escape(key)}\b", text)
    ]
    assert not missing, f"document these keys under docs/: {', '.join(missing)}"


def test_readme_is_read_in_ten_minutes_and_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for link in re.findall(r"\]\(([^)#]+)\)", readme + docs_text()):
        if not link.startswith("http"):
            assert (ROOT / link).exists() or (ROOT / "docs" / link).exists(), link
