import numpy as np
import pytest

from genrec.evaluate import PopularityRecommender, ranking_metrics, top_k


def test_metrics_by_hand():
    top = np.array([[5, 1, 2, 3, 4], [9, 8, 7, 6, 0], [1, 2, 3, 4, 5]])
    targets = np.array([5, 7, 42])  # rank 1, rank 3, missing
    m = ranking_metrics(top, targets, ks=(1, 5))
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["ndcg@1"] == pytest.approx(1 / 3)
    assert m["ndcg@5"] == pytest.approx((1.0 + 1.0 / np.log2(4)) / 3)


def test_metrics_reject_short_lists():
    with pytest.raises(ValueError, match="at least 20"):
        ranking_metrics(np.zeros((2, 5), dtype=int), np.zeros(2, dtype=int))


def test_top_k_orders_by_score_then_lower_id():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]


def test_popularity_ranks_by_training_counts():
    pop = PopularityRecommender([np.array([2, 2, 1]), np.array([2, 0, 1])], num_items=4)
    assert pop.recommend([np.array([0])], 4).tolist() == [[2, 1, 0, 3]]
