"""Dataset statistics, for `genrec data stats` and README tables."""

from __future__ import annotations

import numpy as np

from .dataset import RecDataset
from .text import has_text


def dataset_stats(dataset: RecDataset) -> dict:
    lengths = np.array([len(s) for s in dataset.sequences()])
    inter = dataset.interactions
    n = len(inter)
    items = dataset.items.to_dict("records")
    percentiles = {f"p{p}": float(np.percentile(lengths, p)) for p in (25, 50, 75, 90, 99)}
    return {
        "name": dataset.name,
        "users": dataset.num_users,
        "items": dataset.num_items,
        "interactions": n,
        "density": n / (dataset.num_users * dataset.num_items),
        "seq_len": {"min": int(lengths.min()), "mean": float(lengths.mean()), **percentiles,
                    "max": int(lengths.max())},
        "repeated_pairs": int(inter.duplicated(["user", "item"]).sum()),
        "items_without_text": sum(not has_text(i) for i in items),
        "items_without_title": sum(not i["title"] for i in items),
        "users_under_3": int((lengths < 3).sum()),
    }


def format_stats(stats: dict) -> str:
    """A short human table."""
    seq = stats["seq_len"]
    rows = [
        ("dataset", stats["name"]),
        ("users", f"{stats['users']:,}"),
        ("items", f"{stats['items']:,}"),
        ("interactions", f"{stats['interactions']:,}"),
        ("density", f"{stats['density']:.5f}"),
        ("sequence length", f"min {seq['min']}  p50 {seq['p50']:g}  mean {seq['mean']:.1f}  "
                            f"p90 {seq['p90']:g}  p99 {seq['p99']:g}  max {seq['max']}"),
        ("repeated user-item pairs", f"{stats['repeated_pairs']:,}"),
        ("items without any text", f"{stats['items_without_text']:,}"),
        ("items without a title", f"{stats['items_without_title']:,}"),
        ("users with < 3 interactions", f"{stats['users_under_3']:,}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
