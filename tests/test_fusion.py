"""Score fusion: normalisation and blend by hand; the weight comes from the validation split only."""

import numpy as np
import pytest

from genrec.data import EvalSet, Split
from genrec.fusion import FusedRecommender, blend, fuse, minmax


class TableModel:
    """Scores every item from the last history item through a fixed random table."""

    def __init__(self, seed, items=30):
        self.table = np.random.default_rng(seed).normal(size=(items, items))

    def score_items(self, histories):
        return self.table[[int(h[-1]) for h in histories]].copy()


def _split(seed, users=80, items=30):
    rng = np.random.default_rng(seed)
    histories = [rng.integers(0, items, size=rng.integers(1, 5)) for _ in range(users)]
    return EvalSet(np.arange(users), histories, rng.integers(0, items, size=users))


def test_minmax_and_blend_by_hand():
    scores = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0], [0.0, -np.inf, 4.0]])
    assert np.allclose(minmax(scores)[0], [0.0, 1.0, 0.5]) and np.allclose(minmax(scores)[1], 0.0)
    assert minmax(scores)[2, 0] == 0.0 and np.isneginf(minmax(scores)[2, 1]) and minmax(scores)[2, 2] == 1.0
    a, b = np.array([[0.0, 10.0]]), np.array([[4.0, 2.0]])
    assert np.allclose(blend(a, b, 0.3), [[0.3 * 0 + 0.7 * 1, 0.3 * 1 + 0.7 * 0]])
    model = FusedRecommender(TableModel(0), TableModel(1), 1.0)  # weight 1: the first model's own ranking
    histories = [np.array([3]), np.array([4, 7])]
    assert np.array_equal(model.recommend(histories, 5)[:, 0], np.argmax(TableModel(0).score_items(histories), 1))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        FusedRecommender(TableModel(0), TableModel(1), 1.5)


def test_the_weight_is_chosen_on_validation_rows_only():
    first, second = TableModel(0), TableModel(1)
    valid = _split(2)
    split = Split(train=[], valid=valid, test=_split(3), train_only_users=0)
    fused, info = fuse(first, second, split)
    assert fused.weight == info["fusion_weight"] and info["fusion_weight"] in info["fusion_valid_ndcg@10"]
    assert info["fusion_valid_ndcg@10"][fused.weight] == max(info["fusion_valid_ndcg@10"].values())
    other_test = Split(train=[], valid=valid, test=_split(4), train_only_users=0)
    assert fuse(first, second, other_test)[0].weight == fused.weight  # the test split does not move it
    weights = {fuse(first, second, Split([], _split(seed), valid, 0))[0].weight for seed in range(5, 15)}
    assert len(weights) > 1  # while other validation rows do
