"""Feature health on hand-made matrices, and `recxplore diagnose` end to end."""

import json

import numpy as np
import pytest

from recxplore.cli import main
from recxplore.extract.diagnose import distinct_codes, feature_health


def test_one_vector_for_every_item_is_reported_as_such():
    same = np.tile([[0.3, -1.0, 2.0]], (5, 1))
    health = feature_health(same, ["t"] * 5)
    assert health["mean_pairwise_cosine"] == pytest.approx(1.0)
    assert health["common_mean_share"] == pytest.approx(1.0)
    assert health["effective_rank"] == 0.0 and health["first_component_share"] is None
    assert health["items_sharing_a_text"] == 5


def test_orthogonal_items_have_full_rank_and_no_shared_direction():
    health = feature_health(np.eye(4), ["a", "a", "b", "c"], [1, 2, 3, 4])
    assert health["mean_pairwise_cosine"] == pytest.approx(0.0)
    assert health["common_mean_share"] == pytest.approx(0.25)  # |mean|^2 = 4/16 of |x|^2 = 1
    assert health["effective_rank"] == pytest.approx(3.0)  # centring removes one direction
    assert health["first_component_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert health["items_sharing_a_text"] == 2


def test_a_length_artefact_shows_in_the_first_component():
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 40, size=200)
    x = np.c_[counts * 1.0, rng.normal(0, 0.5, size=(200, 3))]
    health = feature_health(x, [str(i) for i in range(200)], counts.tolist())
    assert health["first_component_vs_tokens"] > 0.99


def test_distinct_code_tuples_skip_padding():
    codes = np.array([[0, 0], [1, 2], [1, 2], [3, 4]])
    assert distinct_codes(codes) == 2


def test_diagnose_command(tiny_dir, home, capsys):
    code = main(["diagnose", "data.name=atomic:tiny", f"data.data_dir={tiny_dir}",
                 "data.filter=none", "extract.model=tfidf-svd", "extract.static_dim=8",
                 "adapt.pca=4", "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["stored"]["items"] == 25 and out["stored"]["dim"] == 8
    assert out["adapter_input"]["dim"] == 4
    assert out["stored"]["first_component_vs_tokens"] is None  # tiny texts all have one length
    assert set(out["stored"]) == set(out["adapter_input"])
