import json

import numpy as np
import pandas as pd
import pytest

from genrec.cli import main
from genrec.data import DataError, RecDataset, SyntheticConfig, make_synthetic
from semid.codebook import CodebookConfig, build_codebook, level_stats
from semid.rqvae import RQVAETrainConfig


def _dataset(n):
    inter = pd.DataFrame({"user_id": ["u"] * n, "item_id": [f"i{k}" for k in range(n)]})
    return RecDataset.from_records(None, inter, "t")


def test_level_stats_by_hand():
    codes = np.array([[0, 1], [0, 2], [1, 3], [1, 3]])
    usage, perplexity = level_stats(codes, [4, 4])
    assert usage == [0.5, 0.75]
    assert perplexity[0] == pytest.approx(2.0)
    assert perplexity[1] == pytest.approx(np.exp(-(2 * 0.25 * np.log(0.25) + 0.5 * np.log(0.5))))


@pytest.mark.parametrize("quantizer", ["rqkmeans", "rqvae"])
def test_many_identical_items_still_get_unique_ids(quantizer):
    rng = np.random.default_rng(0)
    copies = np.tile(rng.normal(size=(1, 24)), (150, 1))
    emb = np.concatenate([copies, rng.normal(size=(250, 24))]).astype(np.float32)
    cfg = CodebookConfig(quantizer=quantizer, levels=(8, 8, 8), train=RQVAETrainConfig(epochs=10, batch_size=128))
    tok, stats = build_codebook(_dataset(400), cfg, embeddings=emb)
    assert stats["collision_rate"] == 0.0 and stats["unique_codes"] == 400
    assert stats["collision_rate_before"] >= 149 / 400  # the copies all collided
    assert len({tok.item_to_tokens(i) for i in range(400)}) == 400


def test_same_seed_gives_identical_codes_and_other_seed_differs():
    emb = np.random.default_rng(1).normal(size=(500, 32)).astype(np.float32)
    cfg = CodebookConfig(levels=(16, 16, 16), train=RQVAETrainConfig(epochs=15, batch_size=128))
    a, _ = build_codebook(_dataset(500), cfg, embeddings=emb)
    b, _ = build_codebook(_dataset(500), cfg, embeddings=emb)
    other = CodebookConfig(levels=(16, 16, 16), seed=1, train=RQVAETrainConfig(epochs=15, batch_size=128))
    c, _ = build_codebook(_dataset(500), other, embeddings=emb)
    assert a.codes.tobytes() == b.codes.tobytes() and a.codes.tobytes() != c.codes.tobytes()


def test_bad_inputs():
    with pytest.raises(DataError, match="do not fit in the code space 2x2 = 4"):
        build_codebook(_dataset(5), CodebookConfig(levels=(2, 2)), embeddings=np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(DataError, match="shape"):
        build_codebook(_dataset(5), CodebookConfig(levels=(4, 4)), embeddings=np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(DataError, match="unknown quantizer"):
        build_codebook(_dataset(5), CodebookConfig(quantizer="pq", levels=(4, 4)),
                       embeddings=np.zeros((5, 3), np.float32))


def test_cli_build_writes_tokenizer_stats_and_plot(tmp_path, capsys):
    make_synthetic(SyntheticConfig(users=300)).save(tmp_path / "data")
    rc = main(["codebook", "build", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "semid"),
               "--quantizer", "rqkmeans", "--levels", "16,16,16", "--cache", str(tmp_path / "cache")])
    assert rc == 0
    stats = json.loads((tmp_path / "semid" / "stats.json").read_text())
    for key in ("items", "unique_codes", "collision_rate_before", "collision_rate", "level_usage",
                "level_perplexity", "recon_mse", "seconds"):
        assert key in stats
    assert stats["collision_rate"] == 0.0 and stats["unique_codes"] == stats["items"]
    assert (tmp_path / "semid" / "code_usage.png").stat().st_size > 1000
    assert "unique IDs" in capsys.readouterr().out
