import numpy as np

from recxplore.config import DataConfig
from recxplore.data.preprocess import preprocess
from recxplore.data.sources import load_raw
from recxplore.eval.negatives import sample_negatives


def _tiny(tiny_dir):
    return preprocess(load_raw("atomic:tiny", tiny_dir), DataConfig(filter="none"), "atomic:tiny")


def test_negatives_exclude_user_items_and_are_deterministic(tiny_dir):
    ds = _tiny(tiny_dir)
    users = np.arange(ds.n_users)
    negs = sample_negatives(ds, users, 5, seed=42, part="test")
    assert negs.shape == (ds.n_users, 5)
    for user, row in zip(users, negs):
        assert not set(row.tolist()) & set(ds.sequence(user).tolist())
        assert len(set(row.tolist())) == 5 and row.min() >= 1
    assert (negs == sample_negatives(ds, users, 5, seed=42, part="test")).all()
    assert not (negs == sample_negatives(ds, users, 5, seed=43, part="test")).all()
    assert not (negs == sample_negatives(ds, users, 5, seed=42, part="valid")).all()


def test_fewer_unseen_items_than_requested_pads_with_zero(tiny_dir):
    ds = _tiny(tiny_dir)
    negs = sample_negatives(ds, np.arange(ds.n_users), 100, seed=1, part="test")
    for user, row in enumerate(negs):
        unseen = ds.n_items - len(set(ds.sequence(user).tolist()))
        assert (row > 0).sum() == unseen
