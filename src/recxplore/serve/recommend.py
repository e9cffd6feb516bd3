"""Top-K recommendations from a bundle for one or many histories of raw item ids.

Scores are the run's own: the user vector of the history (its latest ``model.max_len`` items,
padded as evaluation pads them) against every item's vector; padding never, and the history's
own items not unless asked. A history's unknown ids are refused, naming them, unless the
caller asks to skip them (then they are listed in the answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recxplore.errors import RecxploreError
from recxplore.eval.protocol import left_pad
from recxplore.serve.bundle import Bundle


class RequestError(RecxploreError):
    """A request the caller can fix: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Limits:
    max_history: int = 1000  # ids a history may hold (the model reads its latest max_len)
    max_k: int = 1000
    max_batch: int = 256  # histories a request may hold


def item_indices(
    bundle: Bundle, history: list[str], where: str, skip_unknown: bool
) -> tuple[list[int], list[str]]:
    known, unknown = [], []
    for raw in history:
        index = bundle.index.get(str(raw))
        if index is None:
            unknown.append(str(raw))
        else:
            known.append(index)
    if unknown and not skip_unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise RequestError(
            where,
            f"{len(unknown)} unknown item id(s): {shown}; send ids the bundle holds "
            f"(GET /items/{{id}} checks one) or set skip_unknown to leave them out",
        )
    if not known:
        raise RequestError(where, "no known item ids: a history needs at least one")
    return known, unknown


@torch.inference_mode()
def user_vectors(bundle: Bundle, histories: list[list[int]]) -> torch.Tensor:
    """(B, D) the backbone's vector for each history of item indices."""
    model, max_len = bundle.model, bundle.max_len
    inputs = [np.asarray(h[-max_len:], dtype=np.int64) for h in histories]
    trim = getattr(model, "padding_invariant", False)
    width = min(max_len, max(len(x) for x in inputs) + 1) if trim else max_len
    return model.user_vectors(torch.from_numpy(left_pad(inputs, width))).float()


@torch.inference_mode()
def user_scores(bundle: Bundle, histories: list[list[int]]) -> torch.Tensor:
    """(B, n_items + 1) scores of every item for each history of item indices."""
    scores = user_vectors(bundle, histories) @ bundle.table.T
    scores[:, 0] = float("-inf")
    return scores


def recommend(
    bundle: Bundle,
    histories: list[list[str]],
    k: int = 10,
    exclude_history: bool = True,
    skip_unknown: bool = False,
    limits: Limits = Limits(),
) -> list[dict[str, Any]]:
    """For each history: its top-``k`` items (id, title, score), best first."""
    if not histories:
        raise RequestError("histories", "empty: send at least one history")
    if len(histories) > limits.max_batch:
        raise RequestError("histories", f"{len(histories)} histories; at most {limits.max_batch}")
    if not 1 <= k <= min(limits.max_k, bundle.table.shape[0] - 1):
        raise RequestError("k", f"{k}; choose 1 to {min(limits.max_k, bundle.table.shape[0] - 1)}")
    indices, skipped = [], []
    for i, history in enumerate(histories):
        if len(history) > limits.max_history:
            raise RequestError(
                f"histories[{i}]", f"{len(history)} ids; at most {limits.max_history}"
            )
        known, unknown = item_indices(bundle, history, f"histories[{i}]", skip_unknown)
        indices.append(known)
        skipped.append(unknown)
    with torch.inference_mode():
        if bundle.approximate is not None:
            found = _approximate_top(bundle, indices, k, exclude_history)
        else:
            found = _top(user_scores(bundle, indices), indices, k, exclude_history)
    return [
        {"items": [_entry(bundle, index, score) for index, score in row], "skipped": unknown}
        for row, unknown in zip(found, skipped)
    ]


def _entry(bundle: Bundle, index: int, score: float) -> dict[str, Any]:
    item = bundle.items[index - 1]
    return {"id": item["id"], "title": item["title"], "score": round(score, 6)}


def _top(
    scores: torch.Tensor, indices: list[list[int]], k: int, exclude_history: bool
) -> list[list[tuple[int, float]]]:
    """(item index, score) of each history's exact top ``k``, best first."""
    if exclude_history:
        for row, known in enumerate(indices):
            scores[row, known] = float("-inf")
    top = torch.topk(scores, k, dim=1)
    out = []
    for row in range(len(indices)):
        pairs = []
        for score, index in zip(top.values[row].tolist(), top.indices[row].tolist()):
            if score == float("-inf"):
                break  # fewer items left than k once the history is excluded
            pairs.append((index, score))
        out.append(pairs)
    return out


def _approximate_top(
    bundle: Bundle, indices: list[list[int]], k: int, exclude_history: bool
) -> list[list[tuple[int, float]]]:
    """The graph's top ``k`` of each history: ``k`` more than the history's distinct items
    are searched, so that ``k`` remain once they are excluded."""
    assert bundle.approximate is not None
    extra = max(len(set(known)) for known in indices) if exclude_history else 0
    wanted = min(k + extra, bundle.table.shape[0] - 1)
    scores, found = bundle.approximate.search(user_vectors(bundle, indices), wanted)
    out = []
    for row, known in enumerate(indices):
        drop = set(known) if exclude_history else set()
        pairs = [
            (int(index), float(score))
            for index, score in zip(found[row], scores[row])
            if index > 0 and index not in drop
        ]
        out.append(pairs[:k])
    return out
