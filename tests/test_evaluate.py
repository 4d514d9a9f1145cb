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
    ties = np.random.default_rng(0).integers(0, 4, size=(50, 300)).astype(float)  # many ties at the k-th score
    ties[:, 7] = -np.inf
    everything = np.lexsort((np.tile(np.arange(300), (50, 1)), -ties), axis=1)  # a full sort, by score then id
    assert np.array_equal(top_k(ties, 20), everything[:, :20])
    assert np.array_equal(top_k(ties, 300), np.where(everything == 7, -1, everything))  # -inf is no answer


def test_popularity_ranks_by_training_counts():
    pop = PopularityRecommender([np.array([2, 2, 1]), np.array([2, 0, 1])], num_items=4)
    assert pop.recommend([np.array([0])], 4).tolist() == [[2, 1, 0, 3]]


def test_mrr_validity_coverage_by_hand():
    from genrec.evaluate import full_metrics

    top = np.array([[3, 1, -1, 9], [2, 3, 0, 1]])
    m = full_metrics(top, np.array([1, 7]), num_items=8, ks=(1, 4))
    assert m["mrr@4"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["validity"] == pytest.approx(6 / 8)  # -1 and 9 are not items of an 8-item catalogue
    assert m["coverage@10"] == pytest.approx(4 / 8)  # items 0, 1, 2, 3


def test_tail_groups_by_hand():
    from genrec.evaluate import tail_items, tail_users

    train = [np.array([0, 0, 0, 0, 1, 1, 1, 2]), np.array([0, 3])]  # counts: 0:5, 1:3, 2:1, 3:1 (total 10)
    assert tail_items(train, 5).tolist() == [False, False, True, True, True]  # 4 never seen, 2 and 3 = 2/10
    assert tail_users(train * 5, np.arange(10)).tolist() == [False, True] + [False, True] + [False] * 6


class _Oracle:
    def __init__(self, targets):
        self.queue = list(targets)

    def recommend(self, histories, k):
        out = np.full((len(histories), k), -1)
        for row in range(len(histories)):
            out[row, 0] = self.queue.pop(0)
        return out


def test_evaluate_with_an_oracle_and_popularity():
    from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
    from genrec.evaluate import evaluate

    ds = make_synthetic(SyntheticConfig(users=150))
    split = leave_one_out(ds)
    perfect = evaluate(_Oracle(split.test.targets), ds, batch_size=40)
    assert perfect["recall@1"] == perfect["ndcg@20"] == 1.0 and perfect["validity"] == pytest.approx(1 / 20)
    assert set(perfect["groups"]) == {"tail_users", "head_users", "tail_items", "head_items"}
    pop = evaluate(PopularityRecommender(split.train, ds.num_items), ds, "valid")
    by_hand = ranking_metrics(PopularityRecommender(split.train, ds.num_items).recommend(split.valid.histories, 20),
                              split.valid.targets)
    assert pop["recall@10"] == by_hand["recall@10"] and pop["users"] == len(split.valid)
    assert pop["groups"]["tail_users"]["users"] == round(0.2 * len(split.valid))


def test_evaluate_on_a_user_sample():
    from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
    from genrec.evaluate import evaluate, sample_users

    ds = make_synthetic(SyntheticConfig(users=150))
    split = leave_one_out(ds)
    sample = sample_users(split.test, 40)
    assert len(set(sample.users.tolist())) == 40 and sample.users.tolist() == sorted(sample.users.tolist())
    row_of = {int(u): i for i, u in enumerate(split.test.users)}
    for user, history, target in zip(sample.users, sample.histories, sample.targets):  # rows stay aligned
        assert target == split.test.targets[row_of[int(user)]]
        assert np.array_equal(history, split.test.histories[row_of[int(user)]])
    pop = PopularityRecommender(split.train, ds.num_items)
    top10 = pop.recommend(sample.histories, 10)
    by_hand = np.mean([target in row for target, row in zip(sample.targets, top10)])
    result = evaluate(pop, ds, splits=split, users=40)
    assert result["users"] == 40 and result["recall@10"] == pytest.approx(by_hand)
    assert result == evaluate(pop, ds, splits=split, users=40)  # seeded: every model sees the same users
    assert evaluate(pop, ds, splits=split, users=10_000)["users"] == len(split.test)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(pop, ds, splits=split, users=0)


def test_group_values_and_plot(tmp_path):
    from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
    from genrec.evaluate import GROUP_ORDER, evaluate, group_values, plot_groups, tail_items

    ds = make_synthetic(SyntheticConfig(users=150))
    split = leave_one_out(ds)
    pop = PopularityRecommender(split.train, ds.num_items)
    results = {"popularity": evaluate(pop, ds, splits=split), "empty": {"ndcg@10": 0.5}}
    tail = tail_items(split.train, ds.num_items)[split.test.targets]
    top = pop.recommend([split.test.histories[i] for i in np.flatnonzero(tail)], 20)
    by_hand = ranking_metrics(top, split.test.targets[tail])["ndcg@10"]
    values = group_values(results)
    assert values["popularity"][GROUP_ORDER.index("tail_items")] == pytest.approx(by_hand)
    assert values["popularity"][0] == results["popularity"]["ndcg@10"]
    assert values["empty"][0] == 0.5 and all(np.isnan(v) for v in values["empty"][1:])
    plot_groups(results, tmp_path / "groups.png")
    assert (tmp_path / "groups.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_exclude_history_by_hand():
    from genrec.evaluate import mask_history

    pop = PopularityRecommender([np.array([2, 2, 1]), np.array([2, 0, 1])], num_items=4)  # order 2, 1, 0, 3
    assert pop.recommend([np.array([2]), np.array([1, 0])], 3, exclude_history=True).tolist() == [[1, 0, 3],
                                                                                                   [2, 3, -1]]
    scores = mask_history(np.zeros((2, 3)), [np.array([0, 2]), np.array([], dtype=np.int64)])
    assert np.isneginf(scores).tolist() == [[True, False, True], [False, False, False]]


def test_evaluate_excluding_history_matches_a_filtered_ranking():
    from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
    from genrec.evaluate import evaluate

    ds = make_synthetic(SyntheticConfig(users=150))
    split = leave_one_out(ds)
    pop = PopularityRecommender(split.train, ds.num_items)
    filtered = np.array([[item for item in pop.order if item not in set(h.tolist())][:20]
                         for h in split.test.histories])  # the popularity order minus each history, by hand
    result = evaluate(pop, ds, splits=split, exclude_history=True)
    by_hand = ranking_metrics(filtered, split.test.targets)
    assert result["exclude_history"] and result["recall@10"] == by_hand["recall@10"]
    assert result["ndcg@20"] == pytest.approx(by_hand["ndcg@20"])
