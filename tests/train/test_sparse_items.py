"""train.sparse_items: the ID table takes sparse gradients and SparseAdam; refused where it
cannot work; an interrupted run resumes to the same result."""

import pytest
import torch
from tests.train.test_training import _interrupt_part_way

from recxplore.errors import ConfigError
from recxplore.pipeline import train

SPARSE = {"train.sparse_items": True, "train.loss": "in_batch"}


def test_the_item_table_steps_on_sparse_gradients(tiny_cfg, monkeypatch):
    seen = []
    step = torch.optim.SparseAdam.step

    def recorded(self, *args, **kwargs):
        seen.extend(p.grad.is_sparse for group in self.param_groups for p in group["params"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SparseAdam, "step", recorded)
    results = train(tiny_cfg.replace(**SPARSE), progress=False)
    assert seen and all(seen)
    assert 0 <= results["metrics"]["test"]["full"]["NDCG@10"] <= 1
    dense = train(tiny_cfg.replace(**{"train.loss": "in_batch"}), progress=False)
    assert dense["run_dir"] != results["run_dir"]  # another optimiser: another run


def test_an_interrupted_sparse_run_resumes_to_the_same_result(tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(**{**SPARSE, "train.epochs": 4, "train.patience": 10})
    reference = train(
        cfg.replace(**{"paths.runs_dir": str(tiny_cfg.paths.home) + "/ref"}), progress=False
    )
    _interrupt_part_way(cfg, monkeypatch)
    assert train(cfg, progress=False)["metrics"] == reference["metrics"]


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"adapt.fusion": "replace"}, "only the ID-only item table"),
        ({"train.loss": "ce"}, "reads every item's vector each step"),
        ({"train.weight_decay": 0.01}, "SparseAdam has no weight decay"),
    ],
)
def test_sparse_items_are_refused_where_they_cannot_work(tiny_cfg, extra, message):
    with pytest.raises(ConfigError, match=message):
        tiny_cfg.replace(**{**SPARSE, **extra})
