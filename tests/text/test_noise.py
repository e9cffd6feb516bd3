"""Noisier metadata: the share and seed hold, dropped attributes are a non-empty subset, shuffled
ones come from the other chosen items, and the default leaves texts (and keys) as they were."""

import pytest

from recxplore import config
from recxplore.config import TextConfig, key_settings
from recxplore.text.noise import noisy_meta

META = [{}] + [{"title": f"t{i}", "genres": [f"g{i}"], "year": 1990 + i} for i in range(1, 41)]


def _changed(out):
    return [i for i in range(1, len(META)) if out[i] != META[i]]


def test_drop_removes_attributes_of_the_chosen_share_and_keeps_one():
    out = noisy_meta(META, TextConfig(noise="drop", noise_share=0.25, noise_seed=3))
    assert META[1] == {"title": "t1", "genres": ["g1"], "year": 1991}  # the input is unchanged
    assert 0 < len(_changed(out)) <= 10
    for item in _changed(out):
        assert out[item] and set(out[item]) < set(META[item])
        assert all(out[item][k] == META[item][k] for k in out[item])
    again = noisy_meta(META, TextConfig(noise="drop", noise_share=0.25, noise_seed=3))
    assert again == out
    assert noisy_meta(META, TextConfig(noise="drop", noise_share=0.25, noise_seed=4)) != out


def test_shuffle_swaps_attribute_sets_among_the_chosen_items():
    out = noisy_meta(META, TextConfig(noise="shuffle", noise_share=0.5, noise_seed=0))
    changed = _changed(out)
    assert len(changed) >= 15  # 20 chosen; by chance one may keep its own
    assert sorted(out[i]["title"] for i in changed) == sorted(META[i]["title"] for i in changed)


def test_no_noise_changes_nothing_and_no_key():
    assert noisy_meta(META, TextConfig()) is META
    assert "noise_share" not in key_settings(TextConfig())
    assert key_settings(TextConfig(noise="drop"))["noise_share"] == 0.2


def test_a_share_above_one_is_refused():
    with pytest.raises(config.ConfigError, match="text.noise_share"):
        config.load(None, ["text.noise=drop", "text.noise_share=1.5"])
