"""End-to-end training on the tiny dataset: every backbone x loss, resume, caching."""

import json
from pathlib import Path

import pytest
from tests.conftest import assert_metrics_match_ranks

from recxplore.pipeline import train
from recxplore.registry import BACKBONES, LOSSES
from recxplore.train import batches


@pytest.mark.smoke
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_every_backbone_trains_with_every_loss(tiny_cfg, backbone, loss):
    cfg = tiny_cfg.replace(**{"model.backbone": backbone, "train.loss": loss})
    results = train(cfg, progress=False)
    test = results["metrics"]["test"]
    for protocol in ("full", "sampled"):
        for metric in ("HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR@10"):
            assert 0.0 <= test[protocol][metric] <= 1.0
    assert results["timing"]["epochs"] == 2
    assert_metrics_match_ranks(results)


def test_run_folder_contents_and_cache(tiny_cfg):
    results = train(tiny_cfg, progress=False)
    folder = Path(results["run_dir"])
    for name in (
        "config.yaml",
        "log.txt",
        "metrics.csv",
        "best.pt",
        "test_ranks.csv",
        "results.json",
        "manifest.json",
    ):
        assert (folder / name).is_file(), name
    header = (folder / "test_ranks.csv").read_text().splitlines()[0]
    assert header == "user,target,rank_full,rank_sampled"
    assert json.loads((folder / "results.json").read_text())["metrics"] == results["metrics"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tensorboard")).Reload()
    assert len(events.Scalars("valid_full/NDCG@10")) == results["timing"]["epochs"]
    assert train(tiny_cfg, progress=False) == results  # reused, not retrained


def test_seeded_runs_repeat_and_seeds_differ(tiny_cfg):
    a = train(tiny_cfg, progress=False, fresh=True)
    b = train(tiny_cfg, progress=False, fresh=True)
    assert a["metrics"] == b["metrics"]
    other = train(tiny_cfg.replace(**{"train.seed": 7}), progress=False)
    assert other["run_dir"] != a["run_dir"]
    history = [(Path(r["run_dir"]) / "metrics.csv").read_text() for r in (a, other)]
    assert history[0] != history[1]  # another initialisation and order: other losses


def _interrupt_part_way(cfg, monkeypatch):
    """Start ``cfg``'s run and kill it part way, leaving a checkpoint."""
    import recxplore.train.loop as loop

    calls = {"n": 0}
    real = batches.causal_batch
    n_windows = 30  # tiny users are shorter than max_len + 1 -> one window each
    steps_per_epoch = -(-n_windows // cfg.train.batch_size)

    def dies_part_way(windows):
        calls["n"] += 1
        if calls["n"] == 2 * steps_per_epoch + 2:
            raise KeyboardInterrupt
        return real(windows)

    monkeypatch.setattr(loop, "causal_batch", dies_part_way)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(loop, "causal_batch", real)


def test_interrupted_run_resumes_to_the_same_result(tiny_cfg, monkeypatch):
    cfg = tiny_cfg.replace(**{"train.epochs": 4, "train.patience": 10})
    reference = train(
        cfg.replace(**{"paths.runs_dir": str(tiny_cfg.paths.home) + "/ref"}), progress=False
    )
    _interrupt_part_way(cfg, monkeypatch)
    resumed = train(cfg, progress=False)
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["timing"]["best_epoch"] == reference["timing"]["best_epoch"]
    assert resumed["timing"]["devices"] == [{"from_epoch": 1, "device": "cpu"}]


def test_a_run_started_on_a_gpu_is_finished_on_the_cpu_under_its_own_key(tiny_cfg, monkeypatch):
    import torch

    from recxplore.pipeline import run_folder

    cpu = tiny_cfg.replace(**{"train.epochs": 4, "train.patience": 10, "train.device": "cpu"})
    reference = train(cpu, progress=False)
    # A GPU run stopped part way (its machine went away): this machine
    # has no GPU, so the CPU computes those epochs, filed under the CUDA run's key, and the
    # checkpoint is made as old as those that did not record their devices.
    gpu = cpu.replace(**{"train.device": "cuda"})
    art = run_folder(gpu, progress=False)
    elsewhere = cpu.replace(**{"paths.runs_dir": str(art.path.parent / "elsewhere")})
    _interrupt_part_way(elsewhere, monkeypatch)
    run_folder(elsewhere, progress=False).partial.rename(art.partial)
    ckpt = torch.load(art.partial / "checkpoint.pt", weights_only=False)
    del ckpt["state"]["devices"]
    switch = ckpt["state"]["epoch"] + 1
    torch.save(ckpt, art.partial / "checkpoint.pt")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    finished = train(gpu, progress=False, finish_on="cpu")
    assert finished["run_dir"] == str(art.path) and not art.partial.exists()
    assert finished["timing"]["devices"] == [
        {"from_epoch": 1, "device": "cuda"},
        {"from_epoch": switch, "device": "cpu"},
    ]
    assert finished["metrics"] == reference["metrics"]  # every epoch ran on the CPU here
    assert (
        f"epochs from {switch} on run on cpu; the earlier ones ran on cuda"
        in (art.path / "log.txt").read_text()
    )
    assert train(gpu, progress=False)["run_dir"] == str(art.path)  # now read anywhere


def test_finish_on_never_starts_a_run(tiny_cfg):
    from recxplore.errors import ConfigError
    from recxplore.pipeline import run_folder

    with pytest.raises(
        ConfigError,
        match=r"--finish-on cpu: .* no checkpoint to finish; start "
        r"this run on train\.device=cuda",
    ):
        train(tiny_cfg.replace(**{"train.device": "cuda"}), progress=False, finish_on="cpu")
    art = run_folder(tiny_cfg.replace(**{"train.device": "cuda"}), progress=False)
    assert not art.path.exists() and not art.partial.exists()


def test_no_user_long_enough_for_leave_one_out(tmp_path, home):
    from recxplore import config
    from recxplore.errors import DataError

    raw = tmp_path / "short"
    raw.mkdir()
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"u{u}\ti{(u + k) % 5}\t{k}" for u in range(6) for k in range(2)]
    (raw / "short.inter").write_text("\n".join(lines) + "\n")
    cfg = config.load(
        None,
        [
            "data.name=atomic:short",
            f"data.data_dir={raw}",
            "data.filter=none",
            "data.min_seq_len=1",
            f"paths.home={home}",
        ],
    )
    with pytest.raises(DataError, match="no user has the 3 interactions leave-one-out needs"):
        train(cfg, progress=False)


def test_a_gpu_run_is_not_the_cpu_run(tiny_cfg):
    from recxplore.pipeline import run_folder

    cpu = run_folder(tiny_cfg.replace(**{"train.device": "cpu"}), progress=False)
    auto = run_folder(tiny_cfg, progress=False)
    gpu = run_folder(tiny_cfg.replace(**{"train.device": "cuda:0"}), progress=False)
    import torch

    assert (cpu.path == auto.path) != torch.cuda.is_available() and gpu.path != cpu.path
    assert (
        run_folder(tiny_cfg.replace(**{"train.device": "cuda"}), progress=False).path == gpu.path
    )  # which card does not matter, the device type does


def test_cuda_on_a_machine_without_it_is_a_clear_error_before_any_run_folder(tiny_cfg, monkeypatch):
    import torch

    from recxplore.errors import ConfigError
    from recxplore.pipeline import run_folder

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tiny_cfg.replace(**{"train.device": "cuda"})
    with pytest.raises(
        ConfigError,
        match=r"train\.device=cuda: .* no CUDA device .* "
        r"train\.device=cpu",
    ):
        train(cfg, progress=False)
    folder = run_folder(cfg, progress=False).path
    assert not folder.exists() and not folder.with_name(folder.name + ".partial").exists()
