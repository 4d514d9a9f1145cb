"""Ranking metrics shared by genrec and every baseline: leave-one-out, full ranking over the catalogue.

With one held-out target per user, Recall@K equals HR@K, and NDCG@K is 1/log2(rank + 1) when the target is
ranked within the top K (rank counted from 1), else 0. MRR@20 is 1/rank within the top 20, else 0.
Validity is the share of recommended ids that are real items (1.0 for constrained decoding); coverage@10 is
the share of the catalogue that appears in at least one user's top 10.

Groups, defined once here: tail users are the 20% of evaluated users with the shortest training histories
(ties by user order); tail items are the least popular items (by training interactions) that together make
up 20% of all training interactions; a user is in the tail-item group when their target is a tail item.

CTR baselines (baselines/ctr) are scored on their own rows by `ctr_metrics`: AUC and log loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from tqdm.auto import tqdm

from .data import MAX_HISTORY, DataError, EvalSet, RecDataset, Split, leave_one_out

KS = (1, 5, 10, 20)
TABLE_KEYS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20")
TAIL_SHARE = 0.2


class Recommender(Protocol):
    def recommend(self, histories: list[np.ndarray], k: int, exclude_history: bool = False) -> np.ndarray:
        """(users, k) item indices, best first; -1 where a model has fewer than k items to give.
        `exclude_history`: never return an item of the user's history (evaluate asks only when told to)."""


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
    """Indices of the k highest scores per row, best first; ties broken by the lower item id; -1 for an item
    scored -inf (excluded), so a masked item can never count as a hit."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)  # the k-th best score per row
    # argpartition picks arbitrarily among items tied at the k-th score: take the lowest ids of those instead
    above, tied = scores > kth, scores == kth
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    picked = np.nonzero(chosen)[1].reshape(len(scores), k)  # row-major: ascending ids within a row
    picked_scores = np.take_along_axis(scores, picked, axis=1)
    order = np.lexsort((picked, -picked_scores), axis=1)
    top = np.take_along_axis(picked, order, axis=1)
    return np.where(np.isneginf(np.take_along_axis(picked_scores, order, axis=1)), -1, top)  # -inf: not an answer


def mask_history(scores: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
    """`scores` (users, items) with each user's history items set to -inf, in place: on data where a user never
    meets an item twice, a seen item is a wasted slot."""
    lengths = [len(h) for h in histories]
    if sum(lengths):
        rows = np.repeat(np.arange(len(histories)), lengths)
        scores[rows, np.concatenate(histories).astype(np.int64)] = -np.inf
    return scores


def item_counts(train: list[np.ndarray], num_items: int) -> np.ndarray:
    """Training interactions per item (int64), the popularity every recommender and group definition uses."""
    return np.bincount(np.concatenate(train), minlength=num_items) if train else np.zeros(num_items, np.int64)


class PopularityRecommender:
    """Ranks every item by its number of training interactions, whatever the history."""

    def __init__(self, train: list[np.ndarray], num_items: int):
        counts = item_counts(train, num_items)
        self.counts = counts.astype(np.float64)
        self.order = np.lexsort((np.arange(num_items), -counts))

    def recommend(self, histories: list[np.ndarray], k: int, exclude_history: bool = False) -> np.ndarray:
        if not exclude_history:
            return np.tile(self.order[:k], (len(histories), 1))
        return top_k(mask_history(np.tile(self.counts, (len(histories), 1)), histories), k)


def tail_items(train: list[np.ndarray], num_items: int, share: float = TAIL_SHARE) -> np.ndarray:
    """Bool per item: the least popular items that together hold `share` of the training interactions."""
    counts = item_counts(train, num_items)
    order = np.lexsort((np.arange(num_items), counts))  # least popular first, ties by id
    cumulative = np.cumsum(counts[order])
    tail = np.zeros(num_items, dtype=bool)
    tail[order[cumulative <= share * counts.sum()]] = True
    return tail


def tail_users(train: list[np.ndarray], users: np.ndarray, share: float = TAIL_SHARE) -> np.ndarray:
    """Bool per evaluated user: the `share` of them with the shortest training histories."""
    lengths = np.array([len(train[u]) for u in users])
    order = np.argsort(lengths, kind="stable")
    tail = np.zeros(len(users), dtype=bool)
    tail[order[: int(round(share * len(users)))]] = True
    return tail


def full_metrics(top_items: np.ndarray, targets: np.ndarray, num_items: int, ks: tuple[int, ...] = KS) -> dict:
    """ranking_metrics plus MRR@maxK, validity and coverage@10."""
    metrics = ranking_metrics(top_items, targets, ks)
    depth = max(ks)
    hits = top_items[:, :depth] == targets[:, None]
    metrics[f"mrr@{depth}"] = float(np.where(hits.any(1), 1.0 / (hits.argmax(1) + 1), 0.0).mean())
    valid = (top_items >= 0) & (top_items < num_items)
    metrics["validity"] = float(valid[:, :depth].mean())
    top10 = top_items[:, :10]
    metrics["coverage@10"] = float(len(np.unique(top10[(top10 >= 0) & (top10 < num_items)])) / num_items)
    return metrics


def sample_users(users: EvalSet, count: int | None, seed: int = 0) -> EvalSet:
    """A seeded random `count` of the evaluation users (all when count is None or larger): the same sample for
    every model, for quick checks of slow models. Metrics on a sample are estimates; say so when reporting."""
    if count is None or count >= len(users):
        return users
    if count < 1:
        raise ValueError(f"users must be at least 1, got {count}")
    pick = np.sort(np.random.default_rng(seed).choice(len(users), count, replace=False))
    return EvalSet(users.users[pick], [users.histories[i] for i in pick], users.targets[pick])


@dataclass
class EvalOptions:
    """How a model is evaluated: `genrec evaluate`'s flags and a recipe's `evaluate:` section."""

    split: Literal["valid", "test"] = "test"  # the held-out item ranked: validation or test
    beams: int = 20                # beam width of genrec's constrained search (at least the depth, 20)
    exact: bool | None = None      # genrec: the provably best 20 items (default: yes for the parallel head)
    users: int | None = None       # a seeded random sample of this many users (quick checks)
    exclude_history: bool = False  # never recommend an item of the user's history (data without repeats)

    def __post_init__(self):
        if self.beams < 1:
            raise DataError(f"evaluate.beams must be at least 1, not {self.beams}")
        if self.users is not None and self.users < 1:
            raise DataError(f"evaluate.users must be at least 1 (or null for all), not {self.users}")


def evaluate(recommender: Recommender, dataset: RecDataset, split: str = "test", max_history: int = MAX_HISTORY,
             batch_size: int = 256, splits: Split | None = None, users: int | None = None,
             exclude_history: bool = False) -> dict:
    """Leave-one-out evaluation of any Recommender: overall metrics and the same per user / item group;
    `users` evaluates a seeded sample of that many users instead of all; `exclude_history` asks the
    recommender never to return an item of the (last `max_history` items of the) user's history."""
    splits = splits or leave_one_out(dataset, max_history)
    rows: EvalSet = sample_users(getattr(splits, split), users)
    depth = max(KS)
    starts = tqdm(range(0, len(rows), batch_size), desc=f"evaluating on {split}", unit="batch",
                  disable=len(rows) <= batch_size, leave=False)
    options = {"exclude_history": True} if exclude_history else {}  # recommenders without the option still work
    top = np.concatenate([np.asarray(recommender.recommend(rows.histories[i : i + batch_size], depth, **options))
                          for i in starts])
    result = {**full_metrics(top, rows.targets, dataset.num_items), "users": len(rows), "split": split,
              "exclude_history": exclude_history}
    item_tail = tail_items(splits.train, dataset.num_items)[rows.targets]
    user_tail = tail_users(splits.train, rows.users)
    groups = {"tail_users": user_tail, "head_users": ~user_tail, "tail_items": item_tail, "head_items": ~item_tail}
    result["groups"] = {name: {**ranking_metrics(top[mask], rows.targets[mask]), "users": int(mask.sum())}
                        for name, mask in groups.items() if mask.any()}
    return result


def metrics_table(rows: dict[str, dict], keys=("recall@5", "recall@10", "ndcg@5", "ndcg@10")) -> str:
    """A markdown table: one row per model."""
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |" for name, m in rows.items()]
    return "\n".join(lines)


GROUP_ORDER = ("all", "tail_users", "head_users", "tail_items", "head_items")


def group_values(rows: dict[str, dict], metric: str = "ndcg@10") -> dict[str, list[float]]:
    """Per model, `metric` overall and in each user / item group (GROUP_ORDER; NaN where a group is empty)."""
    return {name: [m[metric] if group == "all" else m.get("groups", {}).get(group, {}).get(metric, float("nan"))
                   for group in GROUP_ORDER] for name, m in rows.items()}


def plot_groups(rows: dict[str, dict], out, metric: str = "ndcg@10", title: str = "") -> None:
    """Grouped bars of `metric` per model, overall and by group: where a method wins (tail or head) at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = group_values(rows, metric)
    width = 0.8 / max(1, len(values))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(GROUP_ORDER) + 0.3 * len(values)), 3.8))
    for i, (name, heights) in enumerate(values.items()):
        ax.bar(np.arange(len(GROUP_ORDER)) + (i - (len(values) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(np.arange(len(GROUP_ORDER)), [g.replace("_", " ") for g in GROUP_ORDER])
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric}, overall and by group")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars stay visible
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def ctr_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """AUC and log loss of click probabilities (CTR baselines); probabilities are clipped at 1e-7 from 0 and 1."""
    from sklearn.metrics import log_loss, roc_auc_score

    labels, probs = np.asarray(labels), np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    if len(np.unique(labels)) < 2:
        raise DataError(f"AUC needs both labels; these {len(labels)} rows have only {np.unique(labels).tolist()}")
    return {"auc": float(roc_auc_score(labels, probs)), "logloss": float(log_loss(labels, probs, labels=[0, 1]))}
