"""Collaborative regularisation for the RQ-VAE, as LETTER does it (Wang et al., 2024).

Text alone gives two razors the same codes and a razor and its blades different ones. LETTER adds to the
RQ-VAE loss an in-batch contrastive term: each item's quantized latent must score its own collaborative
vector (the item's row in a trained sequential model, e.g. SASRec) above every other item's in the batch.
Items that are consumed together then share code prefixes, which the generative model can exploit.

LETTER trains a SASRec as wide as the quantizer's latent (32) to compare them directly; here any trained
model's item table works: it is reduced to the latent width by PCA (zero-padded when narrower). LETTER's
third term, a diversity loss over code clusters, is left out: the uniform mapping and dead-code
replacement already keep codes evenly used.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genrec.errors import DataError

from .text import check_embeddings


def load_item_vectors(path: str | Path, num_items: int) -> np.ndarray:
    """(num_items, d): a `.npy` file whose row i is item i of the dataset, or a folder of a saved sequential
    baseline (`bench/baseline_quality.py --save`, `baseline.json` + `model.pt`), whose item table is read."""
    path = Path(path)
    if path.is_dir():
        try:
            info = json.loads((path / "baseline.json").read_text())
            state = torch.load(path / "model.pt", weights_only=True)
            table = state["items.weight"].float().numpy()
        except (OSError, ValueError, RuntimeError, KeyError, pickle.UnpicklingError) as err:
            raise DataError(f"{path}: not a saved sequential baseline with an item table ({err})") from None
        if info.get("num_items") != num_items:
            raise DataError(f"{path}: the model was trained on {info.get('num_items')} items, the dataset has "
                            f"{num_items}; collaborative vectors must come from the same dataset")
        vectors = table[1 : num_items + 1]  # row 0 is padding
    elif path.is_file():
        try:
            vectors = np.load(path)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: not a readable .npy array ({err})") from None
    else:
        raise DataError(f"collaborative vectors: {path} does not exist")
    try:
        check_embeddings(vectors, num_items)
    except DataError as err:
        raise DataError(f"{path}: collaborative {err}") from None
    return vectors.astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit L2 norm (all-zero rows stay zero)."""
    x = x.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def to_latent_width(vectors: np.ndarray, width: int) -> np.ndarray:
    """Project onto the top `width` principal directions (centred), keeping the vectors' scale."""
    centred = vectors - vectors.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ directions[:width].T
    if projected.shape[1] < width:
        projected = np.pad(projected, ((0, 0), (0, width - projected.shape[1])))
    return projected.astype(np.float32)


def contrastive_loss(quantized: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """LETTER's collaborative loss: cross-entropy of each quantized latent's dot products with the batch's
    collaborative vectors, its own being the right answer."""
    logits = quantized @ targets.T
    return nn.functional.cross_entropy(logits, torch.arange(len(quantized)))


def transition_prefix_share(codes: np.ndarray, sequences: list[np.ndarray]) -> float:
    """Share of consecutive item pairs in user sequences (a -> b, a != b) whose first codes agree: how much
    the codebook groups items that are consumed one after the other (chance is about 1 / first-level codes)."""
    pairs = [(seq[:-1], seq[1:]) for seq in sequences if len(seq) > 1]
    if not pairs:
        return 0.0
    before = np.concatenate([a for a, _ in pairs])
    after = np.concatenate([b for _, b in pairs])
    moved = before != after
    return float((codes[before[moved], 0] == codes[after[moved], 0]).mean()) if moved.any() else 0.0
