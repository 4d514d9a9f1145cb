"""Interaction filters: de-duplication of repeated user-item pairs and the iterative k-core."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import DataError
from .dataset import RecDataset

log = logging.getLogger("genrec.data")


def deduplicate(dataset: RecDataset) -> RecDataset:
    """Keep each user's first interaction with an item; later repeats are dropped and counted."""
    repeated = dataset.interactions.duplicated(["user", "item"], keep="first").to_numpy()
    if not repeated.any():
        return dataset
    log.info("dedup: dropped %d repeated user-item interactions", int(repeated.sum()))
    return dataset.subset(~repeated, f"dedup: -{int(repeated.sum())} repeated pairs")


def kcore(dataset: RecDataset, k: int) -> RecDataset:
    """Iteratively drop users and items with fewer than k interactions until every one has at least k."""
    if k <= 1:
        return dataset
    users = dataset.interactions["user"].to_numpy()
    items = dataset.interactions["item"].to_numpy()
    keep = np.ones(len(users), dtype=bool)
    while True:
        user_counts = np.bincount(users[keep], minlength=dataset.num_users)
        item_counts = np.bincount(items[keep], minlength=dataset.num_items)
        drop = keep & ((user_counts[users] < k) | (item_counts[items] < k))
        if not drop.any():
            break
        keep &= ~drop
    if not keep.any():
        raise DataError(f"{dataset.name}: the {k}-core is empty; use a smaller k")
    removed = int((~keep).sum())
    if removed == 0:
        return dataset
    log.info("%d-core: dropped %d of %d interactions", k, removed, len(keep))
    return dataset.subset(keep, f"{k}-core: -{removed} interactions")


def preprocess(dataset: RecDataset, kcore_k: int = 0, dedup: bool = False) -> RecDataset:
    """De-duplicate first (a repeat must not count toward the k-core), then filter."""
    if dedup:
        dataset = deduplicate(dataset)
    return kcore(dataset, kcore_k)
