"""The tuning tests' config: the tiny dataset with the tiny LLaMA, a few quick steps."""

import pytest


@pytest.fixture
def tune_cfg(tiny_cfg, tiny_llama):
    return tiny_cfg.replace(
        **{
            "extract.model": str(tiny_llama),
            "tune.steps": 4,
            "tune.batch_size": 4,
            "tune.lr": 1e-2,
            "tune.warmup_steps": 0,
            "tune.schedule": "constant",
            "tune.save_every": 2,
            "extract.batch_size": 8,
        }
    )
