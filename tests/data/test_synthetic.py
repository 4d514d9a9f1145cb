import pandas as pd

from baselines.markov import MarkovRecommender
from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
from genrec.evaluate import PopularityRecommender, ranking_metrics


def test_same_seed_same_data_other_seed_other_data():
    a = make_synthetic(SyntheticConfig(users=200, seed=3))
    b = make_synthetic(SyntheticConfig(users=200, seed=3))
    c = make_synthetic(SyntheticConfig(users=200, seed=4))
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    assert a.items.to_dict("records") == b.items.to_dict("records")
    assert not a.interactions.equals(c.interactions)


def test_catalogue_has_text_and_unique_titles():
    ds = make_synthetic(SyntheticConfig(users=300))
    assert ds.items["title"].is_unique
    assert all(len(c) == 3 for c in ds.items["categories"])
    assert ds.items["description"].notna().all() and ds.items["brand"].notna().all()


def test_a_sequential_model_clearly_beats_popularity():
    ds = make_synthetic(SyntheticConfig(users=1500))
    split = leave_one_out(ds)
    results = {}
    for name, model in (("pop", PopularityRecommender), ("markov", MarkovRecommender)):
        top = model(split.train, ds.num_items).recommend(split.test.histories, 20)
        results[name] = ranking_metrics(top, split.test.targets)
    assert results["markov"]["recall@10"] > 2.5 * results["pop"]["recall@10"]
    assert results["markov"]["ndcg@10"] > 2.5 * results["pop"]["ndcg@10"]
