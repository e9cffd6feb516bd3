"""LLM rewriting: cleaning, caching and resuming, the local generator, the HTTP back end."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recxplore import config
from recxplore.cache import home_dir
from recxplore.data.prepare import prepare
from recxplore.text import prompts
from recxplore.text.generators import GenerateError, HTTPGenerator
from recxplore.text.rewrite import RewriteError, cache_file, final_texts, rewrite


def test_clean_strips_markup_echo_labels_and_caps_length():
    prompt = "Summarise this movie."
    raw = "<|im_start|>assistant\nSummary:  A toy   cowboy\nfeels replaced.<|im_end|>"
    assert prompts.clean(raw, prompt, 100) == "A toy cowboy feels replaced."
    assert prompts.clean(prompt + " Keywords: toys, friendship", prompt, 100) == "toys, friendship"
    assert prompts.clean("one two three four", prompt, 9) == "one two"
    assert (
        prompts.clean("Here are 5 keywords that describe this movie: toys, 1995", prompt, 100)
        == "toys, 1995"
    )
    assert prompts.clean("<|im_end|>  ", prompt, 100) == ""


class FakeGenerator:
    def __init__(self, reply=lambda user: "keywords: alpha, beta"):
        self.calls = 0
        self.reply = reply

    def __call__(self, pairs, on_batch=None):
        self.calls += len(pairs)
        return [(self.reply(user), "") for _, user in pairs]


@pytest.fixture
def rw_cfg(tiny_cfg, tiny_llama):
    return tiny_cfg.replace(
        **{"text.rewrite": "keywords", "generate.batch_size": 4, "generate.model": str(tiny_llama)}
    )


def test_rewrites_are_cached_and_resume_after_a_cut_line(rw_cfg):
    texts = [f"title is Item {i}" for i in range(6)]
    gen = FakeGenerator()
    assert rewrite(texts, rw_cfg, progress=False, generator=gen) == ["alpha, beta"] * 6
    assert gen.calls == 6
    again = FakeGenerator()
    assert rewrite(texts, rw_cfg, progress=False, generator=again) == ["alpha, beta"] * 6
    assert again.calls == 0  # all from the cache
    path = cache_file(rw_cfg)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # killed mid-write
    resumed = FakeGenerator()
    rewrite(texts, rw_cfg, progress=False, generator=resumed)
    assert resumed.calls == 3
    other_mode = FakeGenerator()
    rewrite(
        texts, rw_cfg.replace(**{"text.rewrite": "summary"}), progress=False, generator=other_mode
    )
    assert other_mode.calls == 6  # the mode is part of the cache key


def test_failed_items_are_reported_never_replaced(rw_cfg):
    gen = FakeGenerator(lambda user: "<|im_end|>" if "Item 2" in user else "fine")
    with pytest.raises(RewriteError, match=r"1 of 3 item text\(s\) could not be rewritten"):
        rewrite([f"title is Item {i}" for i in range(3)], rw_cfg, progress=False, generator=gen)
    failures = cache_file(rw_cfg).with_name(
        cache_file(rw_cfg).name.replace(".jsonl", ".failures.jsonl")
    )
    assert "Item 2" in failures.read_text()
    fixed = FakeGenerator(lambda user: "fine now")
    assert rewrite(
        [f"title is Item {i}" for i in range(3)], rw_cfg, progress=False, generator=fixed
    ) == ["fine", "fine", "fine now"]
    assert fixed.calls == 1 and not failures.exists()


def test_local_generator_rewrites_a_dataset(rw_cfg, tiny_llama):
    cfg = rw_cfg.replace(
        **{"generate.max_new_tokens": 6, "text.rewrite_join": "append", "text.style": "kv"}
    )
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    texts = final_texts(ds, cfg, progress=False, items=[1, 2, 3])
    assert texts[0] == "" and texts[4] == ""
    for i in (1, 2, 3):
        original, _, new = texts[i].partition(" \n ")
        assert original.startswith("title: Item number") and new.strip()
    assert len(cache_file(cfg).read_text().splitlines()) == 3


# -- the HTTP back end against a server on loopback ---------------------------------------------


class Handler(BaseHTTPRequestHandler):
    attempts: dict[str, int] = {}
    headers_seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        Handler.headers_seen.append(self.headers.get("Authorization", ""))
        marker = next(
            (m for m in ("SLOW", "LIMIT", "FLAKY", "BROKEN", "DENIED") if m in user), "OK"
        )
        n = Handler.attempts[marker] = Handler.attempts.get(marker, 0) + 1
        if marker == "SLOW" and n == 1:
            time.sleep(1.0)
        if marker == "LIMIT" and n == 1:
            return self._send(429, b"{}", {"Retry-After": "3"})
        if marker == "FLAKY" and n == 1:
            return self._send(500, b"oops")
        if marker == "BROKEN":
            return self._send(200, b'{"choices": []}')
        if marker == "DENIED":
            return self._send(401, b"{}")
        reply = {"choices": [{"message": {"role": "assistant", "content": f"reply {marker}"}}]}
        self._send(200, json.dumps(reply).encode())

    def _send(self, code, payload, headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    Handler.attempts.clear()
    Handler.headers_seen.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_backend_retries_and_reports(rw_cfg, server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-secret-123")
    cfg = rw_cfg.replace(
        **{
            "generate.model": "http",
            "generate.base_url": server,
            "generate.api_model": "test-model",
            "generate.api_key_env": "TEST_KEY",
            "generate.timeout": 0.5,
            "generate.retries": 2,
            "generate.concurrency": 3,
        }
    )
    waits: list[float] = []
    gen = HTTPGenerator(cfg.generate, sleep=waits.append)
    texts = ["an OK item", "a SLOW item", "a LIMIT item", "a FLAKY item", "a BROKEN item"]
    with pytest.raises(RewriteError, match=r"1 of 5 .*malformed reply \(IndexError"):
        rewrite(texts, cfg, progress=False, generator=gen)
    assert Handler.attempts == {"OK": 1, "SLOW": 2, "LIMIT": 2, "FLAKY": 2, "BROKEN": 3}
    assert 3.0 in waits  # the 429's Retry-After was honoured
    assert set(Handler.headers_seen) == {"Bearer sk-secret-123"}
    cached = cache_file(cfg).read_text()
    assert "reply SLOW" in cached and "reply LIMIT" in cached and "reply FLAKY" in cached
    written = list(cache_file(cfg).parent.glob("*"))
    assert sorted(p.suffix for p in written) == [".jsonl", ".jsonl", ".lock"]  # the cache, the
    # failure list and the cache's lock, none holding the key
    assert all("sk-secret" not in p.read_text() + p.name for p in written)


def test_http_backend_stops_on_a_wrong_key_or_url(rw_cfg, server):
    cfg = rw_cfg.replace(
        **{"generate.model": "http", "generate.base_url": server, "generate.api_model": "m"}
    )
    with pytest.raises(GenerateError, match="HTTP 401"):
        rewrite(["DENIED"], cfg, progress=False, generator=HTTPGenerator(cfg.generate))


def test_http_needs_url_and_model():
    with pytest.raises(config.ConfigError, match="generate.model=http: needs generate.base_url"):
        config.load(None, ["generate.model=http"])
