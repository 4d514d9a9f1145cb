"""The product quantizer (OPQ): long IDs, unique and deterministic, the codes faiss itself would give."""

import numpy as np
import pandas as pd
import pytest
import torch

from genrec.data import DataError, RecDataset
from semid.codebook import CodebookConfig, build_codebook
from semid.pq import ProductQuantizer
from semid.tokenizer import SemanticIdTokenizer


def _dataset(n):
    inter = pd.DataFrame({"user_id": ["u"] * n, "item_id": [f"i{k}" for k in range(n)]})
    return RecDataset.from_records(None, inter, "t")


def _embeddings(n=400, dim=30, copies=12, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim))
    emb[:copies] = emb[0]  # identical texts: they collide on every position
    return emb.astype(np.float32)


def test_long_opq_ids_are_unique_deterministic_and_round_trip(tmp_path):
    cfg = CodebookConfig(quantizer="opq", levels=(16,) * 30)  # 30 positions: token letters past z
    a, stats = build_codebook(_dataset(400), cfg, embeddings=_embeddings())
    b, _ = build_codebook(_dataset(400), cfg, embeddings=_embeddings())
    assert a.codes.tobytes() == b.codes.tobytes()
    assert stats["collision_rate"] == 0.0 and stats["collision_rate_before"] == pytest.approx(11 / 400)
    assert a.codes.shape == (400, 30) and len(np.unique(a.codes, axis=0)) == 400
    tokens = a.item_to_tokens(7)
    assert tokens.startswith("<a_") and "<z_" in tokens and "<aa_" in tokens and "<ad_" in tokens
    assert all(a.tokens_to_item(a.item_to_tokens(i)) == i for i in range(400))
    a.save_pretrained(tmp_path / "semid")
    loaded = SemanticIdTokenizer.from_pretrained(tmp_path / "semid")
    assert np.array_equal(loaded.codes, a.codes) and isinstance(loaded.quantizer, ProductQuantizer)
    new = loaded.add_items(["new1", "new2"], _embeddings(seed=1)[:2])  # cold start: fresh, still unique codes
    assert len(np.unique(loaded.codes, axis=0)) == 402 and new == [400, 401]


def test_assignment_is_nearest_code_per_part_and_matches_faiss():
    import faiss

    emb = _embeddings(n=600, dim=24, copies=1)
    quantizer = ProductQuantizer(dim=24, levels=(32,) * 6, train_items=1000, rotation_iters=5)
    quantizer.fit(emb, seed=0)
    codes, last = quantizer.assign(torch.from_numpy(emb))
    parts = quantizer.latent(torch.from_numpy(emb)).reshape(600, 6, 4)
    brute = torch.stack([torch.cdist(parts[:, p], quantizer.centroids[p]).argmin(1) for p in range(6)], 1)
    assert torch.equal(codes, brute)
    assert torch.allclose(last, torch.cdist(parts[:, -1], quantizer.centroids[-1]).pow(2), atol=1e-3)
    pq = faiss.ProductQuantizer(24, 6, 5)
    faiss.copy_array_to_vector(quantizer.centroids.numpy().ravel(), pq.centroids)
    rotated = np.ascontiguousarray(parts.reshape(600, 24).numpy())
    unpacked = np.array([[(int.from_bytes(row.tobytes(), "little") >> (5 * p)) & 31 for p in range(6)]
                         for row in pq.compute_codes(rotated)])
    assert np.array_equal(unpacked, codes.numpy())


def test_opq_needs_equal_power_of_two_levels_and_enough_items():
    with pytest.raises(DataError, match="power of two"):
        ProductQuantizer(dim=8, levels=(16, 8), train_items=100, rotation_iters=5)
    with pytest.raises(DataError, match="at least 16 items"):
        ProductQuantizer(dim=8, levels=(16, 16), train_items=100, rotation_iters=5).fit(np.zeros((10, 8), np.float32))
