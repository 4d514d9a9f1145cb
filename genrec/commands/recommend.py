"""`genrec recommend`: step 3, top-k items for one history or a file of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..evaluate import EvalOptions


@dataclass
class RecommendConfig:
    model: str = ""                # a folder from `genrec finetune` (or genrec run's model/)
    history: str | None = None     # comma-separated original item ids, oldest first
    users: str | None = None       # a file with one history per line
    k: int = 10                    # items per history
    beams: int = EvalOptions.beams  # beam width of the constrained search
    exact: bool | None = None      # the provably best k items (default: yes for the parallel head, beams else)
    exclude_history: bool = False  # never recommend items of the history
    json: bool = False             # JSON lines instead of a table

    def __post_init__(self):
        if (self.history is None) == (self.users is None):
            raise DataError("genrec recommend: give exactly one of --history or --users")
        if self.k < 1 or self.beams < 1:
            raise DataError(f"genrec recommend: -k and --beams must be at least 1 (got {self.k}, {self.beams})")


def read_histories(lines: list[str], index: dict[str, int]) -> list[np.ndarray]:
    """Item-id lines (comma or space separated) as item-index arrays; empty lines and unknown ids are errors."""
    histories = []
    for number, line in enumerate(lines, start=1):
        ids = [i for i in line.replace(",", " ").split() if i]
        if not ids:
            raise DataError(f"history {number} is empty; give at least one item id")
        unknown = [i for i in ids if i not in index]
        if unknown:
            raise DataError(f"history {number}: unknown item id(s) {', '.join(unknown[:5])}")
        histories.append(np.array([index[i] for i in ids]))
    return histories


def recommend(cfg: RecommendConfig) -> int:
    from ..model import GenRecModel

    model = GenRecModel.from_pretrained(cfg.model)
    if cfg.k > model.semid.num_items:
        raise DataError(f"-k {cfg.k} is larger than the catalogue ({model.semid.num_items} items)")
    if cfg.history is not None:
        lines = [cfg.history]
    else:
        if not Path(cfg.users).is_file():
            raise DataError(f"--users {cfg.users}: no such file")
        lines = [line.strip() for line in Path(cfg.users).read_text().splitlines() if line.strip()]
    histories = read_histories(lines, {item_id: i for i, item_id in enumerate(model.semid.item_ids)})
    items, scores = model.recommend_scored(histories, k=cfg.k, exclude_history=cfg.exclude_history, beams=cfg.beams,
                                           exact=cfg.exact)
    for line, row, row_scores in zip(lines, items, scores):
        ids = [(model.semid.item_ids[i], float(s)) for i, s in zip(row, row_scores) if i >= 0]
        recs = [{"item_id": item, "score": s, "title": model.titles.get(item)} for item, s in ids]
        if cfg.json:
            print(json.dumps({"history": line, "recommendations": recs}))
            continue
        print(f"history: {line}")
        for rank, rec in enumerate(recs, start=1):
            print(f"  {rank:>2}. {rec['item_id']}  {rec['score']:.3f}  {rec['title'] or ''}")
    return 0
