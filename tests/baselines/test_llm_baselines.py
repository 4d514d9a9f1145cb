"""Elephant, LLM-ESR and knowledge augmentation: each piece checked against what it must compute."""

import copy

import numpy as np
import pytest
import torch

from baselines import methods
from baselines.elephant import BehaviourTuneConfig, behaviour_tune, encode, load_encoder, train_elephant, training_pairs
from baselines.knowledge import KnowledgeConfig, KnowledgeRecommender, probe_split, train_knowledge
from baselines.llmesr import LLMESRConfig, LLMESRRecommender, history_vectors, similar_users
from baselines.sequential import SequentialConfig
from genrec.cli import main
from genrec.data import DataError, SyntheticConfig, leave_one_out, make_synthetic
from genrec.evaluate import PopularityRecommender, evaluate
from tests.tiny_lm import save_tiny_lm

SMALL = dict(layers=1, heads=2, max_len=20, batch_size=64)


@pytest.fixture(scope="module")
def data():
    ds = make_synthetic(SyntheticConfig(users=400))
    return ds, leave_one_out(ds), methods.item_texts(ds)


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("minilm")


def test_elephant_initial_item_embeddings_are_the_encoders_vectors(data, minilm):
    ds, split, texts = data
    model = train_elephant(texts, split, "plm", SequentialConfig(**SMALL, epochs=0))
    assert model.cfg.hidden == 384
    np.testing.assert_allclose(model.model.item_table().detach().numpy(), encode(minilm, texts), atol=1e-5)
    assert model.method == "elephant-plm"


def test_behaviour_tuning_learns_next_items_from_training_sequences_only(data, minilm):
    ds, split, texts = data
    rng = np.random.default_rng(0)
    small = leave_one_out(ds)  # 40 items, 8 short training sequences seen again and again: the loss must fall
    small.train = [rng.choice(40, 4, replace=False) for _ in range(8)]
    small.valid.targets[:] = 0
    cfg = BehaviourTuneConfig(steps=16, batch_size=8, lr=1e-4, refresh_every=4, history_items=3, max_length=64)
    pairs = training_pairs(small, 50, 0)
    allowed = {(tuple(s[:t]), s[t]) for s in small.train for t in range(1, len(s))}
    assert all((tuple(h), t) in allowed for h, t in pairs)  # only training sequences, never valid/test
    losses = behaviour_tune(copy.deepcopy(minilm), texts[:40], small, cfg)["losses"]
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])


def test_similar_users_hand_checked():
    users = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [-1.0, 0.0]])
    # user 0: cos to 1 = .994, to 3 = .110, to 2 = 0, to 4 = -1; user 2: 3 (.994), then 1 (.110)
    np.testing.assert_array_equal(similar_users(users, 2), [[1, 3], [0, 3], [3, 1], [2, 1], [2, 3]])
    np.testing.assert_allclose(history_vectors([np.array([0, 2]), np.array([4])], users), [[0.5, 0.5], [-1.0, 0.0]])
    with pytest.raises(DataError, match="other similar users"):
        similar_users(users, 5)


def test_llmesr_is_causal_starts_from_pca_and_learns(data, tmp_path):
    ds, split, texts = data
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(ds.num_items, 48)).astype(np.float32)
    cfg = LLMESRConfig(**SMALL, hidden=32, epochs=20, patience=20, lr=3e-3, neighbours=5, dropout=0.0)
    model = LLMESRRecommender(ds.num_items, cfg, vectors)
    centred = vectors - vectors.mean(axis=0)
    basis = np.linalg.svd(centred, full_matrices=False)[2][:32]  # principal axes, computed independently
    reduced = centred @ basis.T
    reduced /= np.linalg.norm(reduced, axis=1).mean()
    start = model.model.items.weight[1:].detach().numpy()
    np.testing.assert_allclose(np.abs(start), np.abs(reduced), atol=1e-4)  # each axis up to its sign
    net = model.model.eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    changed = seq.clone()
    changed[0, 5:] = torch.tensor([40, 41, 42])
    with torch.no_grad():
        torch.testing.assert_close(net(seq)[0, :5], net(changed)[0, :5])
    model.fit(split)
    seqs = model.training_sequences(split)
    assert (model.neighbours != torch.arange(len(seqs))[:, None]).all()  # never one's own neighbour
    losses = [h["loss"] for h in model.history]
    assert losses[-1] < losses[0]
    pop = evaluate(PopularityRecommender(split.train, ds.num_items), ds, splits=split)
    result = evaluate(model, ds, splits=split)
    assert result["recall@10"] > 1.5 * pop["recall@10"]
    model.save_pretrained(tmp_path / "llmesr")
    again = methods.load(tmp_path / "llmesr")
    np.testing.assert_array_equal(again.recommend(split.test.histories[:50], 10),
                                  model.recommend(split.test.histories[:50], 10))


def test_knowledge_probe_split_holds_out_the_last_training_item(data):
    ds, split, _ = data
    inner, probe = probe_split(split)
    for user, history, target in zip(probe.users, probe.histories, probe.targets):
        np.testing.assert_array_equal(history, split.train[user][:-1])
        assert target == split.train[user][-1]
        np.testing.assert_array_equal(inner.train[user], split.train[user][:-1])


def test_knowledge_fusion_and_probe_loss(data):
    ds, split, _ = data
    rng = np.random.default_rng(0)
    knowledge = rng.normal(size=(ds.num_items, 16)).astype(np.float32)
    model = KnowledgeRecommender(ds.num_items, SequentialConfig(**SMALL, hidden=32, dropout=0.0), knowledge)
    net = model.model.eval()
    with torch.no_grad():
        table = net.item_table()
        expected = net.items.weight[1:] + torch.from_numpy(knowledge) @ net.project.weight.T
        torch.testing.assert_close(table, expected)
        _, probe = probe_split(split)
        item = int(probe.targets[0])
        new = rng.normal(size=(2, 16)).astype(np.float32)
        losses = model.probe_losses(probe, item, np.stack([knowledge[item], *new]))
        rows = [r for r, (h, t) in enumerate(zip(probe.histories, probe.targets)) if t == item or item in h]
        scores = net.scores(net.user_vectors([probe.histories[r] for r in rows]))
        direct = torch.nn.functional.cross_entropy(scores, torch.as_tensor(probe.targets[rows]))
        assert losses[0] == pytest.approx(float(direct), rel=1e-5)
        assert losses[1] != pytest.approx(losses[0])
        torch.testing.assert_close(net.item_table(), table)  # the probe leaves the model as it was


def test_knowledge_alignment_end_to_end_with_a_tiny_lm(data, tmp_path):
    ds, split, texts = data
    lm = save_tiny_lm(tmp_path / "lm", ["tent", "boots", "for", "hiking", "camping", "people", "who", "buy"])
    cfg = KnowledgeConfig(lm=lm, rounds=1, align_items=8, candidates=3, max_new_tokens=6, lora_epochs=1)
    model = train_knowledge(texts, split, cfg, SequentialConfig(**SMALL, hidden=32, epochs=3), tmp_path / "cache")
    assert model.method == "knowledge-aligned-lm"
    round_one = model.extra["alignment"][0]
    assert round_one["probed_items"] == 8 and 0 <= round_one["kept"] <= 8
    assert evaluate(model, ds, splits=split)["validity"] == 1.0
    model.save_pretrained(tmp_path / "k")
    again = methods.load(tmp_path / "k")
    np.testing.assert_array_equal(again.recommend(split.test.histories[:20], 10),
                                  model.recommend(split.test.histories[:20], 10))


def test_cli_trains_and_evaluates_new_methods(tmp_path, capsys):
    make_synthetic(SyntheticConfig(users=200)).save(tmp_path / "data")
    for method in ("bert4rec", "llmesr"):
        assert main(["baseline", "train", "--method", method, "--data", str(tmp_path / "data"), "--out",
                     str(tmp_path / method), "model.epochs=2", "model.hidden=32", "model.layers=1",
                     "model.max_len=20"]) == 0
        assert main(["evaluate", "--model", str(tmp_path / method), "--data", str(tmp_path / "data")]) == 0
        assert method in capsys.readouterr().out
    assert main(["baseline", "train", "--method", "elephant", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "e"), "tune.nope=1"]) == 2
    assert "unknown key(s) nope for BehaviourTuneConfig" in capsys.readouterr().err
    assert main(["baseline", "train", "--method", "elephant-plm", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "e"), "model.hidden=64"]) == 2
    assert "as wide as the text encoder" in capsys.readouterr().err
