import json

import numpy as np
import pytest
import torch

from baselines.methods import load
from baselines.sequential import SequentialConfig, SequentialRecommender
from genrec.cli import main
from genrec.data import SyntheticConfig, leave_one_out, make_synthetic
from genrec.evaluate import PopularityRecommender, evaluate

SMALL = dict(hidden=32, layers=1, heads=2, max_len=20, batch_size=64)


@pytest.mark.parametrize("arch", ["sasrec", "gru4rec"])
def test_causal_mask_holds(arch):
    model = SequentialRecommender(50, SequentialConfig(**SMALL, arch=arch, dropout=0.0)).model.eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    changed = seq.clone()
    changed[0, 5:] = torch.tensor([40, 41, 42])  # change the last three items
    with torch.no_grad():
        a, b = model(seq), model(changed)
    torch.testing.assert_close(a[0, :5], b[0, :5])
    assert not torch.allclose(a[0, 5:], b[0, 5:])


@pytest.mark.parametrize("arch,loss,lr", [("sasrec", "ce", 3e-3), ("sasrec", "bce", 3e-3), ("gru4rec", "ce", 1e-2),
                                          ("bert4rec", "ce", 3e-3)])
def test_loss_falls_and_beats_popularity(arch, loss, lr):
    ds = make_synthetic(SyntheticConfig(users=600))
    split = leave_one_out(ds)
    pop = evaluate(PopularityRecommender(split.train, ds.num_items), ds, splits=split)
    cfg = SequentialConfig(**SMALL, arch=arch, loss=loss, epochs=25, patience=25, lr=lr)
    model = SequentialRecommender(ds.num_items, cfg)
    model.fit(split)
    losses = [h["loss"] for h in model.history]
    assert losses[-1] < losses[0]
    assert evaluate(model, ds, splits=split)["recall@10"] > 1.5 * pop["recall@10"]


def test_nothing_trains_on_validation_or_test():
    ds = make_synthetic(SyntheticConfig(users=200))
    split = leave_one_out(ds)
    weights = []
    for scramble in (False, True):
        if scramble:  # other held-out items and histories: training must not notice
            rng = np.random.default_rng(1)
            split.test.targets = rng.integers(0, ds.num_items, len(split.test))
            split.valid.targets = rng.integers(0, ds.num_items, len(split.valid))
            split.test.histories = [rng.integers(0, ds.num_items, 5) for _ in split.test.histories]
        model = SequentialRecommender(ds.num_items, SequentialConfig(**SMALL, epochs=1))
        model.fit(split)
        weights.append(model.model.items.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_cli_train_save_evaluate(tmp_path, capsys):
    make_synthetic(SyntheticConfig(users=200)).save(tmp_path / "data")
    assert main(["baseline", "train", "--method", "gru4rec-bce", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "gru"), "model.epochs=2", "model.hidden=32", "model.layers=1"]) == 0
    assert json.loads((tmp_path / "gru" / "baseline.json").read_text())["config"]["loss"] == "bce"
    assert main(["evaluate", "--model", str(tmp_path / "gru"), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["validity"] == 1.0 and 0.0 <= metrics["ndcg@10"] <= 1.0
    gru = load(tmp_path / "gru")
    histories = [np.array([3, 1, 4]), np.array([5])]
    full, unseen = gru.recommend(histories, 30), gru.recommend(histories, 10, exclude_history=True)
    for row, history in enumerate(histories):  # the full ranking with the history taken out, by hand
        assert unseen[row].tolist() == [i for i in full[row] if i not in history][:10]


def test_bert4rec_sees_both_sides_and_recommends_at_mask():
    rec = SequentialRecommender(50, SequentialConfig(**SMALL, arch="bert4rec", dropout=0.0))
    model = rec.model.eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    changed = seq.clone()
    changed[0, 7] = 40  # a later item changes what earlier positions see: bidirectional
    with torch.no_grad():
        assert not torch.allclose(model(seq)[0, :7], model(changed)[0, :7])
        # recommending appends [MASK]: the user vector is the output at that position
        expected = model(torch.cat([torch.zeros(1, 20 - 1 - 6, dtype=torch.long), torch.tensor([[4, 8, 10, 12, 3, 6]]),
                                    torch.tensor([[model.mask_token]])], dim=1))[:, -1]
        torch.testing.assert_close(model.user_vectors([np.array([3, 7, 9, 11, 2, 5])]), expected)
    with pytest.raises(Exception, match="cloze"):
        SequentialRecommender(50, SequentialConfig(**SMALL, arch="bert4rec", loss="bce"))
