"""Two processes under torchrun (gloo, one thread each) train what one process trains with the
same global batch, into one run folder that records the world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recxplore import config
from recxplore.pipeline import train

SETTINGS = {
    "model.dropout": 0.0,  # each process draws dropout for its own share of a batch
    "model.attention_dropout": 0.0,
    "train.batching": "random",
    "train.epochs": 3,
    "train.batch_size": 8,
    "train.threads": 1,
}


def _torchrun(cfg_path: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "recxplore",
            "train",
            "--config",
            str(cfg_path),
            "--no-progress",
            "-q",
            *args,
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1", "RECXPLORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_two_processes_train_what_one_trains_with_the_same_global_batch(tiny_cfg, tmp_path):
    one = tiny_cfg.replace(**{**SETTINGS, "paths.home": str(tmp_path / "one")})
    single = train(one, progress=False)
    two = one.replace(**{"paths.home": str(tmp_path / "two")})
    (tmp_path / "two.yaml").write_text(config.dump(two))
    done = _torchrun(tmp_path / "two.yaml", tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [p for p in (tmp_path / "two" / "runs").iterdir() if (p / "results.json").is_file()]
    assert len(runs) == 1  # one folder, written once
    results = json.loads((runs[0] / "results.json").read_text())
    assert results["timing"]["world_size"] == 2 and results["timing"]["batch_per_process"] == 4
    assert results["timing"]["epochs"] == single["timing"]["epochs"]
    for part in ("valid", "test"):
        for protocol in ("full", "sampled"):
            for metric, value in single["metrics"][part][protocol].items():
                got = results["metrics"][part][protocol][metric]
                assert abs(got - value) < 1e-3, (part, protocol, metric, got, value)
    a = torch.load(Path(single["run_dir"]) / "best.pt", weights_only=True)
    b = torch.load(runs[0] / "best.pt", weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-3)  # summation order
    again = _torchrun(tmp_path / "two.yaml", tmp_path / "two", "--json")
    assert again.returncode == 0 and json.loads(again.stdout.splitlines()[-1])["run_dir"] == str(
        runs[0]
    )  # finished: reused, not trained again
