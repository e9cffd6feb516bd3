import json

import pytest

from recxplore.config import DataConfig
from recxplore.data.prepare import prepare
from recxplore.errors import DataError


def test_second_call_reuses_the_cache(tiny_dir, home):
    cfg = DataConfig(name="atomic:tiny", data_dir=str(tiny_dir), filter="none")
    ds, art = prepare(cfg, home)
    manifest = json.loads((art.path / "manifest.json").read_text())
    assert manifest["stats"]["users"] == ds.n_users == 30
    again, art2 = prepare(cfg, home)
    assert art2.path == art.path
    assert again.items.tolist() == ds.items.tolist()
    assert again.item_meta == ds.item_meta and again.item_fingerprint == ds.item_fingerprint


def test_changed_source_or_settings_make_a_new_entry(tiny_dir, home):
    cfg = DataConfig(name="atomic:tiny", data_dir=str(tiny_dir), filter="none")
    _, art = prepare(cfg, home)
    _, other = prepare(DataConfig(name="atomic:tiny", data_dir=str(tiny_dir), filter="kcore"), home)
    assert other.path != art.path
    with open(tiny_dir / "tiny.inter", "a") as f:
        f.write("u0\ti1\t5\t999999\n")
    _, changed = prepare(cfg, home)
    assert changed.path != art.path


def test_failed_prepare_leaves_nothing_that_looks_finished(tiny_dir, home):
    with open(tiny_dir / "tiny.inter", "a") as f:
        f.write("broken line without tabs\n")
    cfg = DataConfig(name="atomic:tiny", data_dir=str(tiny_dir))
    with pytest.raises(DataError, match=r"tiny.inter:\d+: 1 tab-separated values"):
        prepare(cfg, home)
    assert not list(home.rglob("manifest.json"))  # nothing a later run could take as done
    assert not list(home.rglob("*.partial"))  # nor half a dataset


def test_empty_after_filtering(tiny_dir, home):
    cfg = DataConfig(name="atomic:tiny", data_dir=str(tiny_dir), min_seq_len=100)
    with pytest.raises(DataError, match="no interactions left after filtering"):
        prepare(cfg, home)
