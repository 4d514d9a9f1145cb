import numpy as np
import pandas as pd
import pytest
import torch

from baselines.sequential import SequentialConfig, SequentialRecommender
from genrec.data import DataError, RecDataset
from semid.codebook import CodebookConfig, build_codebook
from semid.collaborative import contrastive_loss, load_item_vectors, to_latent_width, transition_prefix_share
from semid.rqvae import RQVAETrainConfig


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


def test_collaborative_needs_the_rqvae_and_a_sane_weight():
    with pytest.raises(DataError, match="needs the rqvae quantizer"):
        CodebookConfig(quantizer="rqkmeans", levels=(4, 4), collaborative="cf.npy")
    with pytest.raises(DataError, match="collaborative_weight must be >= 0"):
        CodebookConfig(levels=(4, 4), collaborative_weight=-1.0)
