"""A quantizer from its saved spec: what a codebook build writes and a tokenizer reads back."""

from __future__ import annotations

from genrec.errors import DataError

from .pq import ROTATION_ITERS, ProductQuantizer
from .rqkmeans import ResidualKMeans
from .rqvae import RQVAE


def build_quantizer(spec: dict, dim: int):
    kind = spec["kind"]
    if kind == "rqvae":
        return RQVAE(dim=dim, levels=tuple(spec["levels"]), hidden=tuple(spec["hidden"]), latent_dim=spec["latent_dim"],
                     commitment_weight=spec["commitment_weight"], dead_code_threshold=spec["dead_code_threshold"],
                     kmeans_iters=spec["kmeans_iters"])
    if kind == "rqkmeans":
        return ResidualKMeans(dim=dim, levels=tuple(spec["levels"]), train_items=spec.get("train_items"))
    if kind == "opq":
        return ProductQuantizer(dim=dim, levels=tuple(spec["levels"]), train_items=spec["train_items"],
                                rotation_iters=spec.get("rotation_iters", ROTATION_ITERS))
    raise DataError(f"unknown quantizer {kind!r}; use 'rqvae', 'rqkmeans' or 'opq'")
