import numpy as np
import pandas as pd
import pytest
import torch

from baselines.sequential import SequentialConfig, SequentialRecommender
from genrec.data import DataError, RecDataset
from semid.codebook import CodebookConfig, build_codebook
from semid.collaborative import contrastive_loss, load_item_vectors, to_latent_width, transition_prefix_share
from semid.rqvae import RQVAETrainConfig
from semid.tokenizer import SemanticIdTokenizer


def test_contrastive_loss_by_hand():
    quantized = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    targets = np.array([[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    logits = quantized @ targets.T
    expected = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(logits)])
    got = contrastive_loss(torch.tensor(quantized), torch.tensor(targets))
    assert float(got) == pytest.approx(expected)


def test_pca_keeps_distances_of_low_rank_vectors_and_pads_narrow_ones():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 10))  # rank 3 in 10 dimensions
    projected = to_latent_width(vectors, 4)
    assert projected.shape == (50, 4)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
    assert np.allclose(np.linalg.norm(projected[:, None] - projected[None], axis=-1), distances, atol=1e-4)
    assert np.allclose(projected[:, 3], 0, atol=1e-4)
    padded = to_latent_width(vectors[:, :2], 5)
    assert padded.shape == (50, 5) and np.all(padded[:, 2:] == 0)


def test_transition_prefix_share_by_hand():
    codes = np.array([[0, 1], [0, 2], [1, 0], [1, 1]])
    # pairs 0->1 (same first code), 1->2 (differ), 2->2 (repeat, skipped), 3->2 (same)
    sequences = [np.array([0, 1, 2, 2]), np.array([3, 2]), np.array([1])]
    assert transition_prefix_share(codes, sequences) == pytest.approx(2 / 3)


def test_item_vectors_from_npy_and_from_a_saved_baseline(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "v.npy", vectors)
    assert np.array_equal(load_item_vectors(tmp_path / "v.npy", 4), vectors)
    with pytest.raises(DataError, match=r"v\.npy: collaborative embeddings have shape \(4, 3\), expected \(5"):
        load_item_vectors(tmp_path / "v.npy", 5)

    model = SequentialRecommender(6, SequentialConfig(hidden=8, max_len=5, epochs=1))
    model.save_pretrained(tmp_path / "sasrec")
    table = load_item_vectors(tmp_path / "sasrec", 6)
    assert np.allclose(table, model.model.item_table().detach().numpy())
    with pytest.raises(DataError, match="trained on 6 items, the dataset has 7"):
        load_item_vectors(tmp_path / "sasrec", 7)
    (tmp_path / "sasrec" / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a saved sequential baseline"):
        load_item_vectors(tmp_path / "sasrec", 6)
    with pytest.raises(DataError, match="does not exist"):
        load_item_vectors(tmp_path / "missing.npy", 4)


def _first_code_purity(codes: np.ndarray, cluster: np.ndarray) -> float:
    """Of the item pairs in one collaborative cluster, the share whose first codes agree."""
    same = (cluster[:, None] == cluster[None]) & ~np.eye(len(cluster), dtype=bool)
    return float((codes[:, None, 0] == codes[None, :, 0])[same].mean())


def test_collaborative_regularisation_groups_co_consumed_items(tmp_path):
    """Text says nothing (noise); the collaborative vectors form 4 clusters. With the regulariser the first code
    follows the clusters clearly more often than without (chance: 1/4)."""
    rng = np.random.default_rng(0)
    n = 200
    text = rng.normal(size=(n, 16)).astype(np.float32)
    cluster = np.arange(n) % 4
    np.save(tmp_path / "cf.npy", rng.normal(size=(4, 8))[cluster] * 3 + rng.normal(size=(n, 8)))
    inter = pd.DataFrame({"user_id": ["u"] * n, "item_id": [f"i{k}" for k in range(n)]})
    dataset = RecDataset.from_records(None, inter, "t")
    purity = {}
    for weight in (0.0, 1.0):
        cfg = CodebookConfig(levels=(4, 4, 16), hidden=(64,), latent_dim=8, uniform_mapping=False,
                             train=RQVAETrainConfig(epochs=150, batch_size=64, lr=3e-3),
                             collaborative=str(tmp_path / "cf.npy") if weight else None, collaborative_weight=weight)
        tokenizer, stats = build_codebook(dataset, cfg, embeddings=text)
        assert stats["unique_codes"] == n
        purity[weight] = _first_code_purity(tokenizer.codes, cluster)
    assert purity[1.0] > purity[0.0] + 0.1, purity


def _same_cluster_agreement(codes: np.ndarray, cluster: np.ndarray) -> float:
    """Mean share of code positions two items agree on, items of one cluster minus items of different ones."""
    agree = (codes[:, None, :] == codes[None, :, :]).mean(-1)
    same = (cluster[:, None] == cluster[None]) & ~np.eye(len(cluster), dtype=bool)
    return float(agree[same].mean() - agree[cluster[:, None] != cluster[None]].mean())


@pytest.mark.parametrize("quantizer, levels", [("opq", (8,) * 8), ("rqkmeans", (8, 8, 8))])
def test_training_free_quantizers_code_the_collaborative_vector_beside_the_text(tmp_path, quantizer, levels):
    """Text is noise, the collaborative vectors form 8 clusters: with them, items of one cluster share codes
    (agreement well above other pairs'); without, they do not. New items are coded from text alone."""
    rng = np.random.default_rng(0)
    n = 400
    text = rng.normal(size=(n, 16)).astype(np.float32)
    cluster = np.arange(n) % 8
    np.save(tmp_path / "cf.npy", rng.normal(size=(8, 8))[cluster] * 3 + rng.normal(size=(n, 8)) * 0.3)
    inter = pd.DataFrame({"user_id": ["u"] * n, "item_id": [f"i{k}" for k in range(n)]})
    dataset = RecDataset.from_records(None, inter, "t")
    gain = {}
    for weight in (0.0, 1.0):
        cfg = CodebookConfig(quantizer=quantizer, levels=levels, uniform_mapping=False, seed=0,
                             collaborative=str(tmp_path / "cf.npy") if weight else None, collaborative_weight=weight)
        tokenizer, stats = build_codebook(dataset, cfg, embeddings=text)
        assert stats["unique_codes"] == n
        gain[weight] = _same_cluster_agreement(tokenizer.codes, cluster)
    assert gain[1.0] > 0.1 and abs(gain[0.0]) < 0.03, gain
    assert tokenizer.config["collaborative"]["text_dim"] == 16
    tokenizer.save_pretrained(tmp_path / "semid")
    loaded = SemanticIdTokenizer.from_pretrained(tmp_path / "semid")
    new = loaded.add_items(["new1", "new2"], rng.normal(size=(2, 16)).astype(np.float32))
    assert len({loaded.item_to_codes(i) for i in range(loaded.num_items)}) == n + 2 and new == [n, n + 1]
    with pytest.raises(DataError, match="embeddings of width 5; this codebook codes width 24"):
        loaded.add_items(["new3"], np.ones((1, 5), dtype=np.float32))


def test_collaborative_weight_must_be_sane():
    with pytest.raises(DataError, match="collaborative_weight must be >= 0"):
        CodebookConfig(levels=(4, 4), collaborative_weight=-1.0)
