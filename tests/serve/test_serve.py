"""Serving: a bundle loads without the cache and scores as its run does; recommend, the HTTP
service (every bad request a 4xx naming the field, auth, a real uvicorn), tampering refused, and
new items added from their text recommended where their text places them."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from recxplore import config
from recxplore.cli import main
from recxplore.pipeline import train
from recxplore.serve.bundle import (
    REDUCTION_TOLERANCE,
    BundleError,
    export_bundle,
    load_bundle,
    relative_gap,
)
from recxplore.serve.new_items import add_items
from recxplore.serve.recommend import Limits, recommend, user_scores

TOPICS = {
    "jazz": ["jazz", "saxophone", "trumpet", "blues", "swing"],
    "space": ["rocket", "astronaut", "galaxy", "orbit", "planet"],
    "food": ["pasta", "recipe", "kitchen", "baking", "spices"],
    "sport": ["football", "goal", "stadium", "league", "coach"],
}
PER_TOPIC, HELD_OUT = 20, 4  # items per topic; of them, never in the training data


def _title(topic: str, i: int, rng: np.random.Generator) -> str:
    words = rng.choice(TOPICS[topic], size=3, replace=False)
    return f"{' '.join(words)} number {i}"


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    """Users who each stay within one topic; some items of every topic held out entirely."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("topics")
    folder = root / "raw"
    folder.mkdir()
    items, new = [], []
    for t, topic in enumerate(TOPICS):
        for j in range(PER_TOPIC):
            i = t * PER_TOPIC + j + 1
            row = {"id": f"i{i}", "title": _title(topic, i, rng), "topic": topic}
            (new if j >= PER_TOPIC - HELD_OUT else items).append(row)
    inter = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(80):
        topic = list(TOPICS)[u % len(TOPICS)]
        pool = [r["id"] for r in items if r["topic"] == topic]
        for step, item in enumerate(rng.choice(pool, size=int(rng.integers(8, 14)), replace=False)):
            inter.append(f"u{u}\t{item}\t{1000 + step}")
    (folder / "topics.inter").write_text("\n".join(inter) + "\n")
    lines = ["item_id:token\ttitle:token_seq"] + [f"{r['id']}\t{r['title']}" for r in items]
    (folder / "topics.item").write_text("\n".join(lines) + "\n")
    jsonl = root / "new.jsonl"
    jsonl.write_text("".join(json.dumps({"id": r["id"], "title": r["title"]}) + "\n" for r in new))
    return folder, jsonl, {r["id"]: r["topic"] for r in items + new}


def _cfg(folder: Path, home: Path, *extra: str) -> config.Config:
    return config.load(
        None,
        [
            "data.name=atomic:topics",
            f"data.data_dir={folder}",
            "data.filter=none",
            "extract.model=minilm-l6",
            "adapt.pca=32",
            "adapt.fusion=replace",
            "adapt.adapter=mlp",
            "model.hidden=32",
            "model.layers=1",
            "model.heads=2",
            "model.max_len=16",
            "train.epochs=15",
            "train.batch_size=16",
            "train.lr=0.004",
            "eval.sampled_negatives=10",
            "train.precision=float32",
            "extract.dtype=float32",
            f"paths.home={home}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def trained(topics, tmp_path_factory):
    pytest.importorskip("fastapi")
    home = tmp_path_factory.mktemp("home")
    cfg = _cfg(topics[0], home)
    run = train(cfg, progress=False)
    bundle = tmp_path_factory.mktemp("bundles") / "replace"
    export_bundle(Path(run["run_dir"]), bundle)
    return cfg, run, bundle


def test_the_bundle_scores_as_its_run_does(trained):
    from recxplore.cache import home_dir
    from recxplore.data.prepare import prepare
    from recxplore.pipeline import item_inputs
    from recxplore.runtime import load_checkpoint
    from recxplore.train.run import build_model

    cfg, run, path = trained
    ds, art = prepare(cfg.data, home_dir(cfg.paths.home))
    model = build_model(cfg, ds, item_inputs(cfg, ds, art.key, progress=False))
    model.load_state_dict(load_checkpoint(Path(run["run_dir"]) / "best.pt"))
    model.eval()
    bundle = load_bundle(path)
    histories = [list(ds.sequence(u)[:-1]) for u in range(5)]
    with torch.no_grad():
        expected = (
            model.user_vectors(
                torch.from_numpy(
                    np.stack([np.pad(h[-16:], (16 - len(h[-16:]), 0)) for h in histories])
                )
            )
            @ model.items.all_items().T
        )
    got = user_scores(bundle, [[int(i) for i in h] for h in histories])
    torch.testing.assert_close(got[:, 1:], expected[:, 1:], rtol=1e-4, atol=1e-5)
    raw = [[ds.item_ids[i - 1] for i in h] for h in histories]
    top = recommend(bundle, raw, k=5)
    for row, result in zip(range(5), top):
        best = expected[row, 1:].clone()
        best[np.asarray(histories[row]) - 1] = float("-inf")
        want = [ds.item_ids[i] for i in torch.topk(best, 5).indices.tolist()]
        assert [r["id"] for r in result["items"]] == want


def test_recommend_on_the_command_line(trained, capsys):
    _, _, path = trained
    assert main(["recommend", str(path), "--history", "i1,i2,i3", "--k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["items"]) == 3 and not {"i1", "i2", "i3"} & {r["id"] for r in out["items"]}
    assert main(["recommend", str(path), "--history", "i1,nope", "--json"]) == 2
    assert "unknown item id(s): nope" in json.loads(capsys.readouterr().out)["error"]


def test_every_bad_request_gets_a_4xx_naming_its_field(trained):
    from fastapi.testclient import TestClient

    bundle = load_bundle(trained[2])
    client = TestClient(create_app_for(bundle, Limits(max_history=30, max_k=20, max_batch=4)))
    ok = client.post("/recommend", json={"history": ["i1", "i2"], "k": 3})
    assert ok.status_code == 200 and len(ok.json()["items"]) == 3
    many = client.post("/recommend", json={"histories": [["i1"], ["i5", "i6"]]})
    assert many.status_code == 200 and len(many.json()["results"]) == 2, many.text
    bad = {
        "malformed JSON": dict(content=b"{not json", headers={"content-type": "application/json"}),
        "wrong type": dict(json={"history": ["i1"], "k": "many"}),
        "unknown id": dict(json={"history": ["i1", "zzz"]}),
        "neither history": dict(json={"k": 3}),
        "both histories": dict(json={"history": ["i1"], "histories": [["i2"]]}),
        "k too large": dict(json={"history": ["i1"], "k": 21}),
        "k zero": dict(json={"history": ["i1"], "k": 0}),
        "too many histories": dict(json={"histories": [["i1"]] * 5}),
        "history too long": dict(json={"history": ["i1"] * 31}),
        "empty histories": dict(json={"histories": []}),
        "only unknown, skipped": dict(json={"history": ["zzz"], "skip_unknown": True}),
        "a float id": dict(json={"history": [1.5]}),
    }
    for name, request in bad.items():
        answer = client.post("/recommend", **request)
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text)
    assert "zzz" in client.post("/recommend", json={"history": ["i1", "zzz"]}).json()["detail"]
    assert client.post("/recommend", json={"history": ["i1"], "k": 21}).json()["field"] == "k"
    skipped = client.post("/recommend", json={"history": ["i1", "zzz"], "skip_unknown": True})
    assert skipped.status_code == 200 and skipped.json()["skipped"] == ["zzz"]
    assert client.get("/items/i1").json()["id"] == "i1"
    assert client.get("/items/nope").status_code == 404
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/openapi.json").status_code == 200
    assert client.post("/recommend", json={"history": ["i1"]}).status_code == 200  # still up


def create_app_for(bundle, limits, token=None):
    from recxplore.serve.app import create_app

    return create_app(bundle, limits, token=token)


def test_bearer_token_auth(trained):
    from fastapi.testclient import TestClient

    client = TestClient(create_app_for(load_bundle(trained[2]), Limits(), token="s3cret"))
    body = {"history": ["i1"]}
    assert client.post("/recommend", json=body).status_code == 401
    assert (
        client.post("/recommend", json=body, headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
    good = {"Authorization": "Bearer s3cret"}
    assert client.post("/recommend", json=body, headers=good).status_code == 200
    assert client.get("/items/i1").status_code == 401
    assert client.get("/health").status_code == 200  # the health check stays open


def test_a_real_uvicorn_serves_the_bundle(trained):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "recxplore", "serve", str(trained[2]), "--port", str(port)],
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    assert json.loads(r.read())["status"] == "ok"
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the service did not come up")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/recommend",
            data=json.dumps({"history": ["i1", "i2"], "k": 2}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert len(json.loads(r.read())["items"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_tampered_bundle_is_refused(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained[2], copy)
    data = bytearray((copy / "table.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "table.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="table.safetensors: missing or altered"):
        load_bundle(copy)


def test_the_reduction_check_is_relative_to_the_features_scale():
    rng = np.random.default_rng(0)
    features = (rng.normal(size=(200, 32)) * 10).astype(np.float32)
    # float32 rounding of a projection computed under another BLAS thread count: absolute
    # differences near 1e-4 on features of magnitude 10 to 40, still a reproduction
    rounded = features * (1 + rng.normal(size=features.shape) * 3e-6)
    assert np.abs(rounded - features).max() > 1e-4
    assert relative_gap(rounded, features) < REDUCTION_TOLERANCE
    another_fit = features.copy()
    another_fit[:, -1] *= -1  # a principal direction of the other sign: not this run's features
    assert relative_gap(another_fit, features) > REDUCTION_TOLERANCE


def test_a_failed_export_leaves_nothing_behind(trained, tmp_path, monkeypatch):
    from recxplore.serve import bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "REDUCTION_TOLERANCE", -1.0)
    out = tmp_path / "bundle"
    with pytest.raises(BundleError, match="does not reproduce the run's features"):
        export_bundle(Path(trained[1]["run_dir"]), out)
    assert list(tmp_path.iterdir()) == []


def test_an_id_only_bundle_refuses_new_items(topics, trained, tmp_path):
    cfg = trained[0].replace(**{"adapt.fusion": "id"})
    run = train(cfg, progress=False)
    bundle = tmp_path / "id"
    export_bundle(Path(run["run_dir"]), bundle)
    with pytest.raises(BundleError, match="ID-only model has no vector"):
        add_items(bundle, topics[1])
    with pytest.raises(BundleError, match="already exists"):
        export_bundle(Path(run["run_dir"]), bundle)


def test_items_held_out_of_training_are_recommended_where_their_text_places_them(
    topics, trained, tmp_path
):
    folder, jsonl, topic_of = topics
    bundle_path = tmp_path / "grown"
    shutil.copytree(trained[2], bundle_path)
    before = load_bundle(bundle_path)
    with pytest.raises(BundleError, match=r"new.jsonl:1: id 'i1' is already an item"):
        bad = tmp_path / "new.jsonl"
        bad.write_text(json.dumps({"id": "i1", "title": "jazz"}) + "\n")
        add_items(bundle_path, bad)
    summary = add_items(bundle_path, jsonl)
    assert summary["added"] == len(TOPICS) * HELD_OUT
    after = load_bundle(bundle_path)
    torch.testing.assert_close(after.table[: before.table.shape[0]], before.table)
    new_ids = [json.loads(line)["id"] for line in jsonl.read_text().splitlines()]
    hits, cases = 0, 0
    ds_users = (folder / "topics.inter").read_text().splitlines()[1:]
    histories: dict[str, list[str]] = {}
    for line in ds_users:
        user, item, _ = line.split("\t")
        histories.setdefault(user, []).append(item)
    for history in histories.values():
        top = recommend(after, [history], k=10)[0]["items"]
        topic = topic_of[history[0]]
        for target in (i for i in new_ids if topic_of[i] == topic):
            cases += 1
            hits += target in {r["id"] for r in top}
    candidates = len(after.items) - np.mean([len(h) for h in histories.values()])
    random_rate = 10 / candidates
    assert hits / cases > 3 * random_rate, (hits / cases, random_rate)


def test_approximate_top_k_finds_the_exact_top_k_of_a_small_catalogue(trained, capsys):
    _, _, path = trained
    exact, graph = load_bundle(path), load_bundle(path, approximate=True, ef_search=512)
    ids = [item["id"] for item in exact.items]
    histories = [ids[i : i + 6] for i in range(0, 60, 6)]
    for exclude in (True, False):
        want = recommend(exact, histories, k=10, exclude_history=exclude)
        got = recommend(graph, histories, k=10, exclude_history=exclude)
        for history, w, g in zip(histories, want, got):
            assert [r["id"] for r in g["items"]] == [r["id"] for r in w["items"]]
            assert [r["score"] for r in g["items"]] == pytest.approx(
                [r["score"] for r in w["items"]], abs=1e-4
            )
            assert not exclude or not set(history) & {r["id"] for r in g["items"]}
    main(["recommend", str(path), "--history", ",".join(ids[:3]), "--approximate", "--json"])
    assert len(json.loads(capsys.readouterr().out)["items"]) == 10
