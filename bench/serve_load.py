"""The HTTP service under load, on loopback: latency, throughput, memory, and a mixed load with
malformed requests; and the time to add new items to a bundle.

For each bundle, ``recxplore serve`` runs in its own process and this script is the client
(so on a 2-core machine client and server share the cores, as they would not in production):
- one history of 50 items, requests one after another: p50 / p99 milliseconds end to end;
- batches of 64 such histories: p50 / p99 milliseconds and histories per second;
- one-history requests from several connections at once: requests per second and p99;
- a mixed load, one request in five malformed (bad JSON, wrong type, unknown id, k too large):
  the count of 5xx answers (should be 0) and of valid answers that differ from the bundle's own
  in-process recommendations (should be 0);
- the server's peak resident memory (VmHWM).
With ``--add-items N``, each bundle that takes new items gets N more (copies of its items'
titles under new ids) and the seconds that took are printed.

Usage: python bench/serve_load.py BUNDLE [BUNDLE ...] [--requests 300] [--add-items 1000]
       [--threads 1] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from recxplore.serve.bundle import load_bundle
from recxplore.serve.new_items import add_items
from recxplore.serve.recommend import recommend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(bundle: Path, port: int, threads: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recxplore",
            "serve",
            str(bundle),
            "--port",
            str(port),
            "--threads",
            str(threads),
        ],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{bundle}: the service did not start")


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes, float]:
    began = time.perf_counter()
    conn.request("POST", "/recommend", body=body, headers={"content-type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    return answer.status, data, (time.perf_counter() - began) * 1000


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def one_after_another(port: int, bodies: list[bytes]) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for body in bodies:
        status, _, ms = post(conn, body)
        assert status == 200, status
        out.append(ms)
    return out


def concurrent(port: int, body: bytes, connections: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine = []
        while time.perf_counter() < stop:
            status, _, ms = post(conn, body)
            assert status == 200, status
            mine.append(ms)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": len(latencies) / (time.perf_counter() - began), **percentiles(latencies)}


def mixed(port: int, bundle, histories: list[list[str]], n: int) -> dict[str, int]:
    rng = np.random.default_rng(1)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    counts = {"valid": 0, "malformed": 0, "5xx": 0, "4xx_for_malformed": 0, "wrong_answers": 0}
    for i in range(n):
        history = histories[i % len(histories)]
        kind = int(rng.integers(5)) if i % 5 == 0 else -1
        if kind < 0:
            body = json.dumps({"history": history, "k": 10}).encode()
        else:
            body = [
                b"{not json",
                json.dumps({"history": history, "k": "ten"}).encode(),
                json.dumps({"history": history + ["no-such-item"]}).encode(),
                json.dumps({"history": history, "k": 10**6}).encode(),
                json.dumps({"histories": "not a list"}).encode(),
            ][kind]
        status, data, _ = post(conn, body)
        counts["5xx"] += status >= 500
        if kind >= 0:
            counts["malformed"] += 1
            counts["4xx_for_malformed"] += 400 <= status < 500
        else:
            counts["valid"] += 1
            want = [r["id"] for r in recommend(bundle, [history], k=10)[0]["items"]]
            got = [r["id"] for r in json.loads(data)["items"]] if status == 200 else None
            counts["wrong_answers"] += got != want
    return counts


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(path: Path, requests: int, threads: int) -> dict:
    bundle = load_bundle(path)
    rng = np.random.default_rng(0)
    ids = [item["id"] for item in bundle.items]
    histories = [list(rng.choice(ids, size=50, replace=False)) for _ in range(256)]
    one = [json.dumps({"history": h, "k": 10}).encode() for h in histories]
    batches = [
        json.dumps({"histories": [histories[(j + i) % 256] for i in range(64)], "k": 10}).encode()
        for j in range(max(requests // 6, 10))
    ]
    port = free_port()
    proc = start(path, port, threads)
    try:
        one_after_another(port, one[:20])  # warm-up
        single = percentiles(one_after_another(port, [one[i % 256] for i in range(requests)]))
        batch_ms = one_after_another(port, batches)
        batch = {**percentiles(batch_ms), "histories_per_s": 64 * 1000 / statistics.mean(batch_ms)}
        levels = {str(c): concurrent(port, one[0], c, 5.0) for c in (1, 4, 16)}
        load = mixed(port, bundle, histories, requests)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "bundle": str(path),
        "items": len(bundle.items),
        "backbone": bundle.manifest["backbone"],
        "fusion": bundle.manifest["fusion"],
        "one_history": single,
        "batch_64": batch,
        "concurrency": levels,
        "mixed": load,
        "server_peak_rss_mb": rss,
        "server_threads": threads,
    }


def time_add_items(path: Path, n: int) -> dict:
    bundle = load_bundle(path)
    if bundle.manifest.get("new_items") != "supported":
        return {"bundle": str(path), "add_items": bundle.manifest.get("new_items")}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bundle"
        shutil.copytree(path, copy)
        items = Path(tmp) / "new.jsonl"
        with items.open("w") as f:
            for i in range(n):
                source = bundle.items[i % len(bundle.items)]
                title = f"{source['title']} (new edition)"  # a bare-number title has no text
                f.write(json.dumps({"id": f"new-{i}", "title": title}) + "\n")
        began = time.perf_counter()
        summary = add_items(copy, items)
        return {
            "bundle": str(path),
            "extractor": bundle.manifest["extractor"]["model"],
            "added": summary["added"],
            "seconds_whole_command": round(time.perf_counter() - began, 2),
            "seconds_embedding_to_table": summary["seconds"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--add-items", type=int, default=0, metavar="N")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    parser.add_argument("--json", type=Path, metavar="OUT")
    args = parser.parse_args()
    results = [measure(p, args.requests, args.threads) for p in args.bundles]
    print(
        "| bundle | items | one history p50 / p99 ms | batch 64 p50 / p99 ms | histories/s "
        "| rps at 1 / 4 / 16 connections | mixed: 5xx, wrong answers | server peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        c = r["concurrency"]
        print(
            f"| {r['backbone']} {r['fusion']} | {r['items']} | {r['one_history']['p50_ms']:.2f} / "
            f"{r['one_history']['p99_ms']:.2f} | {r['batch_64']['p50_ms']:.1f} / "
            f"{r['batch_64']['p99_ms']:.1f} | {r['batch_64']['histories_per_s']:.0f} | "
            f"{c['1']['rps']:.0f} / {c['4']['rps']:.0f} / {c['16']['rps']:.0f} | "
            f"{r['mixed']['5xx']}, {r['mixed']['wrong_answers']} (of {r['mixed']['valid']} valid, "
            f"{r['mixed']['malformed']} malformed) | {r['server_peak_rss_mb']:.0f} |"
        )
    added = [time_add_items(p, args.add_items) for p in args.bundles] if args.add_items else []
    for a in added:
        print(json.dumps(a))
    if args.json:
        args.json.write_text(json.dumps({"serving": results, "add_items": added}, indent=1))


if __name__ == "__main__":
    main()
