"""First-order Markov chain: the next item is scored by how often it followed the history's last item in
training (popularity breaks ties). The simplest sequential model; the demo uses it to show that data has
sequential structure that popularity cannot see.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix

from genrec.evaluate import item_counts, mask_history, top_k


class MarkovRecommender:
    def __init__(self, train: list[np.ndarray], num_items: int):
        pairs = [(s[:-1], s[1:]) for s in train if len(s) > 1]
        src = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
        dst = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
        self.transitions = coo_matrix((np.ones(len(src)), (src, dst)), shape=(num_items, num_items)).tocsr()
        counts = item_counts(train, num_items)
        self.prior = counts / (counts.max() + 1.0)  # below 1: only breaks ties between transition counts

    def recommend(self, histories: list[np.ndarray], k: int, exclude_history: bool = False) -> np.ndarray:
        last = np.array([h[-1] for h in histories])
        scores = self.transitions[last].toarray() + self.prior[None, :]
        return top_k(mask_history(scores, histories) if exclude_history else scores, k)
