"""What LLMEmb's SCFT loss asks of the frozen extractor: on random micro-batches of two item
views each (attributes shuffled, some dropped, as the SCFT stage draws them), the loss against
its chance level, and where its soft targets point.

    python bench/scft_targets.py [--config configs/paper/base.yaml] [--batches 10] [k=v ...]

The targets are a softmax of the views' self-similarities x the temperature (recxplore.contrastive).
With dot products of raw pooled states that point almost one way, a few long vectors can take
most of every row's target: the loss then rewards mapping items onto that item, not telling them apart. Printed per
similarity (LLMEmb's dot product, and cosine): the loss, log(batch), the share of items whose
target puts most mass on the item itself, the mean target mass on itself, and how many distinct
items the rows' targets point at.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from recxplore import config
from recxplore.cache import home_dir
from recxplore.contrastive import contrastive_loss
from recxplore.data.prepare import prepare
from recxplore.extract.encode import pad_batch
from recxplore.extract.pooling import mean_pool
from recxplore.llm.models import load
from recxplore.tables import markdown
from recxplore.text.flatten import flatten
from recxplore.tune.objectives.scft import SCFTConfig, drop_view, scft_examples


def pooled(model, tokenizer, texts: list[str], max_tokens: int) -> torch.Tensor:
    ids = tokenizer(texts, truncation=True, max_length=max_tokens)["input_ids"]
    ids, mask = pad_batch(ids, tokenizer.pad_token_id, "right")
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    return mean_pool(hidden.float(), mask)


def target_health(a: torch.Tensor, b: torch.Tensor, temperature: float) -> list[float]:
    n = len(a)
    targets = torch.softmax((a @ a.T + b @ b.T) / 2 * temperature, dim=-1)
    own = torch.arange(n)
    return [
        contrastive_loss(a, b, temperature).item(),
        (targets.argmax(-1) == own).float().mean().item(),
        targets[own, own].mean().item(),
        float(len(set(targets.argmax(-1).tolist()))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/paper/base.yaml")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = config.load(args.config, args.overrides)
    settings = cfg.tune.options("scft")
    assert isinstance(settings, SCFTConfig)
    torch.manual_seed(args.seed)
    ds, _ = prepare(cfg.data, home_dir(cfg.paths.home))
    loaded = load(cfg.extract.model, models_dir=home_dir(cfg.paths.home) / "models")
    text = {"style": cfg.text.style, "max_chars": cfg.text.max_chars, "domain": cfg.text.domain}
    examples = scft_examples(ds, cfg, settings)
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[list[float]]] = {"dot": [], "cosine": []}
    for _ in range(args.batches):
        metas = [examples[i] for i in rng.choice(len(examples), args.batch_size, replace=False)]
        a, b = (
            pooled(
                loaded.model,
                loaded.tokenizer,
                [
                    flatten(drop_view(m, settings.drop, rng), attributes=None, **text) or " "
                    for m in metas
                ],
                cfg.tune.max_tokens,
            )
            for _ in range(2)
        )
        rows["dot"].append(target_health(a, b, settings.temperature))
        rows["cosine"].append(
            target_health(F.normalize(a, dim=-1), F.normalize(b, dim=-1), settings.temperature)
        )
    head = [
        "similarity",
        "loss",
        "chance log(batch)",
        "items whose target is itself",
        "target mass on itself",
        "distinct target items",
    ]
    table = []
    for similarity, values in rows.items():
        m = np.mean(values, axis=0)
        table.append(
            [
                similarity,
                f"{m[0]:.3f}",
                f"{math.log(args.batch_size):.3f}",
                f"{m[1]:.2f}",
                f"{m[2]:.3f}",
                f"{m[3]:.1f} of {args.batch_size}",
            ]
        )
    print(
        f"{cfg.extract.model}, frozen, temperature {settings.temperature}, "
        f"{args.batches} batches of {args.batch_size} items ({ds.name})\n"
    )
    print(markdown(head, table))


if __name__ == "__main__":
    main()
