"""Feature health of each extractor under each treatment, side by side (ML-100K by default).

For every extractor and pooling span: the stored features' health, and the health of what the
adapter reads under each input treatment (PCA 256, PCA 256 whitened, no PCA, no PCA centred).
Each store and reduction goes through the cache. Prints one Markdown table.

    python bench/feature_health.py [--dataset ml-100k] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from recxplore import config
from recxplore.diagnose import diagnose
from recxplore.tables import markdown

EXTRACTORS = {"smollm2-135m": ["all", "item"], "minilm-l6": ["all", "item"], "tfidf-svd": ["all"]}
INPUTS = {
    "PCA 256": ["adapt.pca=256"],
    "PCA 256 whitened": ["adapt.pca=256", "adapt.pca_whiten=true"],
    "no PCA": ["adapt.pca=null"],
    "no PCA, centred": ["adapt.pca=null", "adapt.center=true"],
}
COLUMNS = [
    "mean_pairwise_cosine",
    "common_mean_share",
    "effective_rank",
    "first_component_share",
    "first_component_vs_tokens",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for model, spans in EXTRACTORS.items():
        for span in spans:
            base = [
                f"data.name={args.dataset}",
                f"extract.model={model}",
                f"extract.pool_span={span}",
            ]
            for label, inputs in INPUTS.items():
                out = diagnose(config.load(None, base + inputs), progress=False)
                parts = [("stored", out["stored"])] if label == "PCA 256" else []
                parts.append((f"adapter input, {label}", out["adapter_input"]))
                for what, health in parts:
                    rows.append(
                        [model, "own tokens" if span == "item" else "all", what]
                        + [str(health.get(c)) for c in COLUMNS]
                    )
    print(markdown(["extractor", "pooled tokens", "features", *COLUMNS], rows))


if __name__ == "__main__":
    main()
