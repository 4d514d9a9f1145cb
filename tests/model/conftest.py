"""A tiny end-to-end world for model tests: synthetic data, residual k-means codes, SFT rows."""

import numpy as np
import pytest

from genrec.data import SyntheticConfig, make_synthetic
from semid.codebook import CodebookConfig, build_codebook
from tasks import TaskConfig, build_sft, save_sft


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    dataset = make_synthetic(SyntheticConfig(users=200, items_per_type=2))
    embeddings = np.random.default_rng(0).normal(size=(dataset.num_items, 16)).astype(np.float32)
    semid, _ = build_codebook(dataset, CodebookConfig(quantizer="rqkmeans", levels=(8, 8, 8)), embeddings=embeddings)
    cfg = TaskConfig(tasks=("seqrec", "item2index"))
    sft = build_sft(dataset, semid, cfg)
    dataset.save(root / "data")
    semid.save_pretrained(root / "semid")
    save_sft(sft, root / "sft", cfg, semid)
    return {"root": root, "dataset": dataset, "semid": semid, "sft": sft}
