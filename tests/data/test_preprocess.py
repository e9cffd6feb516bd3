import numpy as np
import pytest

from recxplore.config import DataConfig
from recxplore.data.preprocess import preprocess
from recxplore.data.sources.readers import RawData
from recxplore.data.split import eval_set, train_sequences
from recxplore.errors import DataError


def raw(rows, meta=None):
    users, items, ratings, stamps = zip(*rows)
    return RawData(list(users), list(items), list(ratings), list(stamps), meta or {})


def test_chronological_with_file_order_tie_break_and_natural_reindex():
    rows = [("u1", "10", 5, 3.0), ("u1", "2", 4, 1.0), ("u1", "9", 4, 1.0), ("u2", "2", 1, 0.0)]
    ds = preprocess(
        raw(rows, {"2": {"title": "two"}}), DataConfig(filter="none", min_seq_len=1), "t"
    )
    assert ds.item_ids == ["2", "9", "10"]  # natural order, not "10" < "2"
    assert ds.user_ids == ["u1", "u2"]
    # u1: time 1.0 tie between "2" and "9" keeps file order, then "10" at time 3.0
    assert ds.sequence(0).tolist() == [1, 2, 3]
    assert ds.item_meta[1] == {"title": "two"} and ds.item_meta[0] == {}


def test_dedup_keeps_first_or_last():
    rows = [("u", "a", 1, 1.0), ("u", "b", 1, 2.0), ("u", "a", 1, 3.0)]
    first = preprocess(raw(rows), DataConfig(filter="none", min_seq_len=1, dedup="first"), "t")
    last = preprocess(raw(rows), DataConfig(filter="none", min_seq_len=1, dedup="last"), "t")
    every = preprocess(raw(rows), DataConfig(filter="none", min_seq_len=1, dedup="none"), "t")
    assert first.sequence(0).tolist() == [1, 2]
    assert last.sequence(0).tolist() == [2, 1]
    assert every.sequence(0).tolist() == [1, 2, 1]


def test_min_rating():
    rows = [("u", "a", 5, 1.0), ("u", "b", 2, 2.0), ("u", "c", 4, 3.0)]
    ds = preprocess(raw(rows), DataConfig(filter="none", min_seq_len=1, min_rating=4), "t")
    assert ds.item_ids == ["a", "c"]


def _chain():
    # One pass of 3/3 drops u4 and d together, leaving u3 with 2 items and c with 2 users.
    rows = [
        ("u1", "a", 1, 1.0),
        ("u1", "b", 1, 2.0),
        ("u1", "c", 1, 3.0),
        ("u2", "a", 1, 1.0),
        ("u2", "b", 1, 2.0),
        ("u2", "c", 1, 3.0),
        ("u3", "a", 1, 1.0),
        ("u3", "b", 1, 2.0),
        ("u3", "d", 1, 3.0),
        ("u4", "c", 1, 1.0),
    ]
    return raw(rows)


def test_one_pass_filter_is_not_iterative():
    one = preprocess(
        _chain(), DataConfig(filter="one_pass", user_core=3, item_core=3, min_seq_len=1), "t"
    )
    assert one.item_ids == ["a", "b", "c"] and one.user_ids == ["u1", "u2", "u3"]
    assert one.n_interactions == 8  # c keeps 2 users: LLMEmb's filter does not iterate


def test_iterative_kcore_reaches_a_fixed_point():
    ds = preprocess(
        _chain(), DataConfig(filter="kcore", user_core=2, item_core=2, min_seq_len=1), "t"
    )
    assert (np.bincount(ds.items)[1:] >= 2).all() and (ds.lengths() >= 2).all()
    with pytest.raises(DataError, match="no interactions left after filtering"):
        preprocess(
            _chain(), DataConfig(filter="kcore", user_core=3, item_core=3, min_seq_len=1), "t"
        )


def test_empty_after_filtering_names_the_settings():
    with pytest.raises(DataError, match=r"no interactions left after filtering .*min_seq_len=9"):
        preprocess(_chain(), DataConfig(min_seq_len=9), "t")


def test_min_rating_without_ratings_is_an_error():
    rows = [("u", "a", float("nan"), 1.0)]
    with pytest.raises(DataError, match="has no ratings; remove data.min_rating"):
        preprocess(raw(rows), DataConfig(min_rating=3), "t")


def test_leave_one_out():
    rows = [("u1", str(i), 1, float(i)) for i in range(1, 6)] + [
        ("u2", "1", 1, 0.0),
        ("u2", "2", 1, 1.0),
    ]
    ds = preprocess(raw(rows), DataConfig(filter="none", min_seq_len=1), "t")
    train = train_sequences(ds)
    assert train[0].tolist() == [1, 2, 3] and train[1].tolist() == [1, 2]  # short user: train only
    valid, test = eval_set(ds, "valid"), eval_set(ds, "test")
    assert valid.users.tolist() == [0] and valid.inputs[0].tolist() == [1, 2, 3]
    assert valid.targets.tolist() == [4]
    assert test.inputs[0].tolist() == [1, 2, 3, 4] and test.targets.tolist() == [5]
