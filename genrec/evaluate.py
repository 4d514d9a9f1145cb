"""Ranking metrics shared by genrec and every baseline: leave-one-out, full ranking over the catalogue.

With one held-out target per user, Recall@K equals HR@K, and NDCG@K is 1/log2(rank + 1) when the target is
ranked within the top K (rank counted from 1), else 0.
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10, 20)


def ranking_metrics(top_items: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Recall@K and NDCG@K averaged over users; `top_items` is (users, >= max K), best first."""
    top_items, targets = np.asarray(top_items), np.asarray(targets)
    if top_items.ndim != 2 or len(top_items) != len(targets):
        raise ValueError(f"top_items must be (users, k) with one row per target; got {top_items.shape} "
                         f"for {len(targets)} targets")
    if top_items.shape[1] < max(ks):
        raise ValueError(f"need at least {max(ks)} recommendations per user, got {top_items.shape[1]}")
    hits = top_items[:, : max(ks)] == targets[:, None]
    rank = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    metrics = {}
    for k in ks:
        hit = rank <= k
        metrics[f"recall@{k}"] = float(hit.mean())
        metrics[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(np.minimum(rank, k) + 1), 0.0).mean())
    return metrics


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first; ties broken by the lower item id."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


class PopularityRecommender:
    """Ranks every item by its number of training interactions, whatever the history."""

    def __init__(self, train: list[np.ndarray], num_items: int):
        counts = np.bincount(np.concatenate(train), minlength=num_items) if train else np.zeros(num_items)
        self.order = np.lexsort((np.arange(num_items), -counts))

    def recommend(self, histories: list[np.ndarray], k: int) -> np.ndarray:
        return np.tile(self.order[:k], (len(histories), 1))
