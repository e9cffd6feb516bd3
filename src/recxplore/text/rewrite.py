"""LLM rewriting of item texts (keywords, summary, expansion), every generation cached.

The cache is one JSON-lines file per (mode, prompt template, generator, decoding settings) under
``<home>/cache/rewrites/``; each line holds an input text, its SHA-256 and the generator's raw
reply, cleaned when read (so better cleaning rules apply without regenerating).
Lines are appended and flushed batch by batch, so an interrupted run resumes without
regenerating (a line cut short by a crash is ignored). An item whose generation keeps failing
(an empty reply after cleaning, an HTTP error after every retry) is written to
``<key>.failures.jsonl`` and reported in a ``RewriteError``: it is never replaced by an empty or
the original text. Rerunning retries just the failed items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from tqdm.auto import tqdm

from recxplore.cache import file_lock, home_dir, stage_key
from recxplore.config import Config, key_settings
from recxplore.data.dataset import Dataset
from recxplore.errors import RecxploreError
from recxplore.llm.models import resolve
from recxplore.text import prompts
from recxplore.text.items import item_texts, text_settings


class RewriteError(RecxploreError):
    """Items whose rewriting failed; they are listed, never silently replaced."""


def text_identity(cfg: Config, rewritten: bool = True) -> dict[str, Any]:
    """What cache keys need to know about the texts: the flattening settings, plus the
    rewriting mode and generator when ``rewritten`` and the config rewrites."""
    if rewritten and cfg.text.rewrite != "none":
        text = {**key_settings(cfg.text), "generator": generator_identity(cfg)}
    else:
        text = key_settings(dataclasses.replace(cfg.text, rewrite="none"))
    return {**text, **text_settings(cfg.text, cfg.data.name)}


def generation_seed(cfg: Config) -> int:
    """The sampling seed: ``generate.seed``, else the run's ``train.seed``."""
    return cfg.generate.seed if cfg.generate.seed is not None else cfg.train.seed


def generator_identity(cfg: Config) -> dict[str, Any]:
    g = cfg.generate
    if g.model == "http":
        who: dict[str, Any] = {"http": g.base_url, "model": g.api_model}
    else:
        who = {"local": resolve(g.model, home_dir(cfg.paths.home) / "models")[1], "dtype": g.dtype}
    return {
        **who,
        "max_new_tokens": g.max_new_tokens,
        "temperature": g.temperature,
        "seed": generation_seed(cfg) if g.temperature > 0 else None,
    }


def cache_file(cfg: Config) -> Path:
    mode = cfg.text.rewrite
    key = stage_key(
        "rewrite",
        {
            "mode": mode,
            "system": prompts.SYSTEM,
            "template": prompts.TEMPLATES[mode],
            "generator": generator_identity(cfg),
        },
    )
    return home_dir(cfg.paths.home) / "cache" / "rewrites" / f"{mode}-{key}.jsonl"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_cache(path: Path) -> dict[str, tuple[str, str]]:
    """input SHA-256 -> (input text, raw reply)."""
    out: dict[str, tuple[str, str]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            out[row["input_sha256"]] = (row["input"], row["raw"])
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # the last line of a run killed mid-write
    return out


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite(
    texts: list[str], cfg: Config, progress: bool = True, generator: Optional[Any] = None
) -> list[str]:
    """The rewrites of ``texts`` (flattened item texts), generated once and then cached. A
    process with texts left to rewrite holds the cache file's lock, so two processes never
    generate or append the same rewrites; reading a complete cache takes no lock."""
    path = cache_file(cfg)
    if path.is_file() and not _missing(texts, cfg, path):
        return _rewrite(texts, cfg, progress, generator)
    with file_lock(path.with_name(path.name + ".lock")):
        return _rewrite(texts, cfg, progress, generator)


def _missing(texts: list[str], cfg: Config, path: Path) -> bool:
    cached = read_cache(path)
    return any(_digest(t) not in cached for t in texts)


def _rewrite(texts: list[str], cfg: Config, progress: bool, generator: Optional[Any]) -> list[str]:
    from recxplore.text.generators import build_generator

    path = cache_file(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    domain = text_settings(cfg.text, cfg.data.name)["domain"]

    def cleaned(text: str, raw: Optional[str]) -> str:
        if raw is None:
            return ""
        user = prompts.user_message(cfg.text.rewrite, text, domain)
        return prompts.clean(raw, user, cfg.text.rewrite_max_chars)

    done = {
        digest: out
        for digest, (text, raw) in read_cache(path).items()
        if (out := cleaned(text, raw))
    }  # cleaning runs on read: its rules may improve
    todo = sorted({t for t in texts if _digest(t) not in done})
    failures_path = path.with_name(path.name.replace(".jsonl", ".failures.jsonl"))
    failures: list[dict[str, Any]] = []
    if todo:
        settings = dataclasses.replace(cfg.generate, seed=generation_seed(cfg))
        generator = generator or build_generator(settings, home_dir(cfg.paths.home) / "models")
        bar = tqdm(
            total=len(todo), desc=f"rewrite ({cfg.text.rewrite})", unit="item", disable=not progress
        )
        step = max(cfg.generate.batch_size, cfg.generate.concurrency)
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            messages = [
                (prompts.SYSTEM, prompts.user_message(cfg.text.rewrite, t, domain)) for t in chunk
            ]
            replies = generator(messages, on_batch=bar.update)
            rows = []
            for text, (reply, reason) in zip(chunk, replies):
                out = cleaned(text, reply)
                if out:
                    rows.append({"input_sha256": _digest(text), "input": text, "raw": reply})
                    done[_digest(text)] = out
                else:
                    failures.append(
                        {
                            "input": text,
                            "reason": reason or "empty reply after cleaning",
                            "raw": reply,
                        }
                    )
            _append(path, rows)
        bar.close()
    if failures:
        failures_path.write_text(
            "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures), encoding="utf-8"
        )
        first = failures[0]
        raise RewriteError(
            f"{len(failures)} of {len(set(texts))} item text(s) could not be "
            f"rewritten ({cfg.text.rewrite}), e.g. {first['input'][:80]!r}: "
            f"{first['reason']}; all are listed in {failures_path}. Rerun to "
            f"retry them (finished rewrites are cached), or change "
            f"generate.* settings"
        )
    failures_path.unlink(missing_ok=True)
    return [done[_digest(t)] for t in texts]


def final_texts(
    ds: Dataset, cfg: Config, progress: bool = True, items: Optional[list[int]] = None
) -> list[str]:
    """The texts the extractor sees, aligned with the item index (row 0 empty): flattened, then
    rewritten when ``text.rewrite`` is set. ``items`` limits rewriting to those indices (the
    other rows are left empty)."""
    texts = item_texts(ds, cfg.text)
    if cfg.text.rewrite == "none":
        return texts
    chosen = [
        i for i in (items if items is not None else range(1, len(texts))) if texts[i].strip()
    ]  # an item without text stays empty (extract reports it)
    rewritten = rewrite([texts[i] for i in chosen], cfg, progress)
    out = [""] * len(texts)
    for i, new in zip(chosen, rewritten):
        out[i] = new if cfg.text.rewrite_join == "replace" else f"{texts[i]} \n {new}"
    return out
