"""Score fusion of two recommenders (MemGen-GR, Ding et al. 2026): per-user min-max normalised scores, blended.

`w * norm(first) + (1 - w) * norm(second)`, with `norm` mapping each user's scores over the catalogue to
[0, 1]. The weight is chosen on the validation split only (NDCG@10 over a grid), never on the split that is
reported. Both models must score every item: `score_items(histories) -> (users, items)` (genrec's parallel
head and the sequential baselines have it).
"""

from __future__ import annotations

import numpy as np

from .data import EvalSet, Split
from .evaluate import mask_history, ranking_metrics, top_k

WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))  # the grid the weight is chosen from
BATCH = 256


def minmax(scores: np.ndarray) -> np.ndarray:
    """Each row mapped to [0, 1] (min -> 0, max -> 1; a constant row -> 0); -inf stays -inf."""
    finite = np.where(np.isfinite(scores), scores, np.nan)
    low, high = np.nanmin(finite, axis=1, keepdims=True), np.nanmax(finite, axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(np.isfinite(scores), (scores - low) / span, scores)


class FusedRecommender:
    """The `Recommender` protocol over the blend of two models' normalised scores."""

    def __init__(self, first, second, weight: float):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the fusion weight must be in [0, 1], not {weight}")
        self.first, self.second, self.weight = first, second, float(weight)

    def score_items(self, histories: list[np.ndarray]) -> np.ndarray:
        return blend(self.first.score_items(histories), self.second.score_items(histories), self.weight)

    def recommend(self, histories: list[np.ndarray], k: int, exclude_history: bool = False) -> np.ndarray:
        scores = self.score_items(histories)
        return top_k(mask_history(scores, histories) if exclude_history else scores, k)


def blend(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    if first.shape != second.shape:
        raise ValueError(f"the two models score different catalogues: {first.shape} vs {second.shape}")
    return weight * minmax(first) + (1.0 - weight) * minmax(second)


def choose_weight(first, second, valid: EvalSet, weights=WEIGHTS, exclude_history: bool = False
                  ) -> tuple[float, dict[float, float]]:
    """The weight of best validation NDCG@10 (the smaller weight on a tie) and NDCG@10 for every weight."""
    if len(valid) == 0:
        raise ValueError("choosing a fusion weight needs validation users; the validation split is empty")
    tops: dict[float, list[np.ndarray]] = {w: [] for w in weights}
    for start in range(0, len(valid), BATCH):
        histories = valid.histories[start : start + BATCH]
        a, b = first.score_items(histories), second.score_items(histories)
        for w in weights:
            scores = blend(a, b, w)
            tops[w].append(top_k(mask_history(scores, histories) if exclude_history else scores, 20))
    ndcg = {float(w): ranking_metrics(np.concatenate(t), valid.targets)["ndcg@10"] for w, t in tops.items()}
    best = max(ndcg, key=lambda w: (ndcg[w], -w))
    return best, ndcg


def fuse(first, second, splits: Split, exclude_history: bool = False) -> tuple[FusedRecommender, dict]:
    """The fused recommender with its weight chosen on `splits.valid` (nothing else of the split is read)."""
    weight, curve = choose_weight(first, second, splits.valid, exclude_history=exclude_history)
    return FusedRecommender(first, second, weight), {"fusion_weight": weight, "fusion_valid_ndcg@10": curve}
