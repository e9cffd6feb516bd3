import numpy as np

from recxplore.train.batches import causal_batch, causal_windows, masked_batch, masked_windows


def test_causal_windows_train_every_target_once():
    seq = np.arange(1, 12)  # 11 items -> 10 targets (2..11)
    windows = causal_windows([seq], max_len=4)
    targets = np.concatenate([w[1:] for w in windows])
    assert sorted(targets.tolist()) == list(range(2, 12))
    assert all(len(w) <= 5 for w in windows)


def test_causal_batch_left_pads_and_shifts():
    inputs, targets = causal_batch([np.array([1, 2, 3]), np.array([4, 5])])
    assert inputs.tolist() == [[1, 2], [0, 4]]
    assert targets.tolist() == [[2, 3], [0, 5]]


def test_masked_batch_masks_only_real_items():
    windows = masked_windows([np.arange(1, 8), np.array([3])], max_len=4)
    inputs, targets = masked_batch(windows, mask_id=99, mask_prob=0.5, rng=np.random.default_rng(0))
    assert ((targets > 0) == (inputs == 99)).all()
    assert ((targets > 0).sum(1) >= 1).all()
    padded = inputs == 0
    assert (targets[padded] == 0).all()
