import json
import subprocess
import sys
from pathlib import Path

from recxplore.cli import main


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "exactly one JSON object on stdout"
    return json.loads(out)


def test_datasets(capsys, tiny_dir, home):
    obj = run_json(capsys, ["datasets", "--data-dir", str(tiny_dir)])
    names = {d["name"]: d["available"] for d in obj["datasets"]}
    assert names["atomic:tiny"] is True and names["steam"] is False


def test_prepare(capsys, tiny_dir, home):
    obj = run_json(
        capsys, ["prepare", "atomic:tiny", "--data-dir", str(tiny_dir), "data.filter=none"]
    )
    assert {"dataset", "users", "items", "interactions", "avg_seq_len"} <= set(obj)
    assert obj["users"] == 30


def test_train_prints_the_results_object(capsys, tiny_cfg, tmp_path):
    path = tmp_path / "cfg.yaml"
    from recxplore import config

    path.write_text(config.dump(tiny_cfg))
    obj = run_json(
        capsys, ["train", "--config", str(path), "model.backbone=gru4rec", "--no-progress"]
    )
    assert obj["dataset"] == "atomic:tiny" and obj["seed"] == 42
    assert set(obj["metrics"]["test"]) == {"full", "sampled"}
    assert obj["config"]["model"]["backbone"] == "gru4rec"
    assert {"train_seconds", "epochs", "best_epoch"} <= set(obj["timing"])


def test_quiet_train_prints_no_info_on_stderr(tiny_cfg, tmp_path):
    from recxplore import config

    path = tmp_path / "cfg.yaml"
    path.write_text(config.dump(tiny_cfg))
    argv = [sys.executable, "-m", "recxplore", "train", "--config", str(path), "--no-progress"]
    loud = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    quiet = subprocess.run(
        argv + ["-q", "--fresh", "--json"], capture_output=True, text=True, timeout=300
    )
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert "INFO recxplore.train.loop: epoch 1" in loud.stderr
    assert "INFO" not in quiet.stderr
    run_dir = json.loads(quiet.stdout)["run_dir"]
    assert "INFO recxplore.train.loop: epoch 1" in Path(run_dir, "log.txt").read_text()


def test_run_prints_runs_and_table(capsys, tiny_cfg, tmp_path):
    from recxplore import config

    path = tmp_path / "cfg.yaml"
    path.write_text(config.dump(tiny_cfg))
    obj = run_json(capsys, ["run", "--config", str(path), "--no-progress"])
    assert len(obj["runs"]) == 1 and obj["table"].startswith("| run |")


def test_errors_are_one_line_messages_without_traceback(capsys, home):
    assert main(["train", "train.lr=-1", "model.backbone=nope"]) == 2
    err = capsys.readouterr().err
    assert "error: invalid configuration (2 problem(s))" in err and "Traceback" not in err
    assert main(["prepare", "steam", "--data-dir", str(home)]) == 2
    assert "steam: none of steam_reviews.json.gz" in capsys.readouterr().err


def test_module_entry_point_and_help():
    out = subprocess.run(
        [sys.executable, "-m", "recxplore", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "loss (one of 'bce', 'ce', 'in_batch', 'sampled'" in out
    assert "dotted overrides" in out


def test_text_and_extract(capsys, tiny_dir, home):
    obj = run_json(
        capsys,
        [
            "text",
            "atomic:tiny",
            "--data-dir",
            str(tiny_dir),
            "--limit",
            "2",
            "data.filter=none",
            "text.style=kv",
        ],
    )
    assert obj["dataset"] == "atomic:tiny" and [i["index"] for i in obj["items"]] == [1, 2]
    assert obj["items"][0]["text"].startswith("title: Item number")
    obj = run_json(
        capsys,
        [
            "extract",
            "data.name=atomic:tiny",
            f"data.data_dir={tiny_dir}",
            "data.filter=none",
            "extract.model=tfidf-svd",
            "extract.static_dim=4",
            "--no-progress",
        ],
    )
    assert {"path", "rows", "dim", "seconds", "items_per_second"} <= set(obj)
    assert obj["dim"] == 4


def test_tune_prints_path_stages_seconds(capsys, tiny_cfg, tiny_llama, tmp_path):
    from recxplore import config

    path = tmp_path / "cfg.yaml"
    path.write_text(config.dump(tiny_cfg))
    obj = run_json(
        capsys,
        [
            "tune",
            "--config",
            str(path),
            f"extract.model={tiny_llama}",
            "tune.stages=[scft]",
            "tune.steps=2",
            "tune.batch_size=4",
            "--no-progress",
        ],
    )
    assert obj["stages"] == ["scft"] and obj["seconds"] >= 0
    assert (Path(obj["path"]) / "adapter_model.safetensors").is_file()
    assert [t["steps"] for t in obj["trained"]] == [2]
    assert main(["tune", "--config", str(path)]) == 2  # no stages: nothing to tune
    assert "nothing to tune" in capsys.readouterr().err


def test_text_rewrite_shows_original_and_rewritten(capsys, tiny_dir, home, tiny_llama):
    obj = run_json(
        capsys,
        [
            "text",
            "atomic:tiny",
            "--data-dir",
            str(tiny_dir),
            "--limit",
            "2",
            "--rewrite",
            "summary",
            "data.filter=none",
            f"generate.model={tiny_llama}",
            "generate.max_new_tokens=4",
            # seeded sampling, not greedy: a random model's near-flat argmax can end every reply
            "generate.temperature=1.0",
            "generate.seed=0",
        ],
    )
    assert obj["rewrite"] == "summary" and len(obj["items"]) == 2
    assert all(i["original"].startswith("The ") and i["text"] for i in obj["items"])
