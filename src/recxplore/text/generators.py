"""Generator back ends for rewriting: local transformers generation and an OpenAI-compatible
HTTP endpoint. Both take (system, user) message pairs and return one raw reply (or None for a
failure, with the reason) per pair.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import torch

from recxplore.config import GenerateConfig
from recxplore.errors import RecxploreError
from recxplore.llm.models import DTYPES, resolve
from recxplore.runtime import ensure_pad_token, resolve_device

log = logging.getLogger(__name__)

Reply = tuple[Optional[str], str]  # (text or None, failure reason or "")


class GenerateError(RecxploreError):
    """A generator that cannot run at all (as opposed to one item failing)."""


class LocalGenerator:
    """Batched greedy (or sampled) generation with a causal LM and its chat template."""

    def __init__(self, cfg: GenerateConfig, models_dir: Path, offline: bool = True):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source, _ = resolve(cfg.model, models_dir)
        self.cfg = cfg
        self.device = resolve_device(cfg.device, "generate.device")
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge
        ensure_pad_token(self.tokenizer)
        self.model = AutoModelForCausalLM.from_pretrained(
            source, dtype=DTYPES[cfg.dtype], local_files_only=offline
        )
        self.model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' stub

    def _prompt(self, system: str, user: str) -> str:
        if self.tokenizer.chat_template:
            return str(
                self.tokenizer.apply_chat_template(
                    [{"role": "system", "content": system}, {"role": "user", "content": user}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
            )
        return f"{system}\n\n{user}\n\n"  # a base model without a chat template

    @torch.inference_mode()
    def __call__(
        self, pairs: list[tuple[str, str]], on_batch: Optional[Callable[[int], None]] = None
    ) -> list[Reply]:
        out: list[Reply] = []
        sample = self.cfg.temperature > 0
        for start in range(0, len(pairs), self.cfg.batch_size):
            chunk = [self._prompt(s, u) for s, u in pairs[start : start + self.cfg.batch_size]]
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(self.device)
            if sample:
                torch.manual_seed((self.cfg.seed or 0) + start)  # resolved by the caller
            ids = self.model.generate(
                **enc,
                max_new_tokens=self.cfg.max_new_tokens,
                do_sample=sample,
                temperature=self.cfg.temperature if sample else None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new = ids[:, enc["input_ids"].shape[1] :]
            out += [(t, "") for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
            if on_batch:
                on_batch(len(chunk))
        return out


class HTTPGenerator:
    """OpenAI-compatible ``POST {base_url}/chat/completions`` with bounded concurrency,
    timeouts, and retries with exponential backoff that honour a 429's Retry-After."""

    FATAL = (400, 401, 403, 404)  # a wrong URL, key or model: retrying cannot help

    def __init__(self, cfg: GenerateConfig, sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.sleep = sleep

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _one(self, system: str, user: str) -> Reply:
        body = json.dumps(
            {
                "model": self.cfg.api_model,
                "max_tokens": self.cfg.max_new_tokens,
                "temperature": self.cfg.temperature,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
            }
        ).encode()
        reason = ""
        for attempt in range(self.cfg.retries + 1):
            wait = 2.0**attempt
            try:
                request = urllib.request.Request(self.url, data=body, headers=self._headers())
                with urllib.request.urlopen(request, timeout=self.cfg.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
                content = payload["choices"][0]["message"]["content"]
                if not isinstance(content, str):
                    raise TypeError("message content is not a string")
                return content, ""
            except urllib.error.HTTPError as err:
                if err.code in self.FATAL:
                    raise GenerateError(
                        f"{self.url}: HTTP {err.code} ({err.reason}); check "
                        f"generate.base_url, generate.api_model and the key in "
                        f"${self.cfg.api_key_env}"
                    ) from None
                reason = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if err.code == 429 and retry_after and retry_after.strip().isdigit():
                    wait = float(retry_after)
            except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
                reason = f"no reply ({getattr(err, 'reason', err)})"
            except (ValueError, KeyError, IndexError, TypeError) as err:
                reason = f"malformed reply ({type(err).__name__}: {err})"
            if attempt < self.cfg.retries:
                log.info("retrying after %s in %.1f s", reason, wait)
                self.sleep(min(wait, 120.0))
        return None, f"{reason} after {self.cfg.retries + 1} attempts"

    def __call__(
        self, pairs: list[tuple[str, str]], on_batch: Optional[Callable[[int], None]] = None
    ) -> list[Reply]:
        def task(pair: tuple[str, str]) -> Reply:
            reply = self._one(*pair)
            if on_batch:
                on_batch(1)
            return reply

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(task, pairs))


def build_generator(cfg: GenerateConfig, models_dir: Path) -> Any:
    if cfg.model == "http":
        return HTTPGenerator(cfg)
    return LocalGenerator(cfg, models_dir)
