"""Optimised product quantization (OPQ; Ge et al., 2013), the long, unordered semantic IDs RPG uses.

A learned rotation, then the rotated vector cut into `positions` equal parts, each quantized by its own
k-means codebook: an item's ID is one code per part, every position independent of the others (no residual
order), so IDs can be long (16-64 codes) and any position can be predicted in parallel. faiss trains the
rotation and the codebooks (on a seeded sample of at most `train_items` items, which is what makes a
million-item catalogue take minutes); assignment is ours, in torch, chunked, so it runs where faiss does not
and gives the same codes faiss would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genrec.errors import DataError

CHUNK = 8192  # items per assignment chunk: chunk x positions x codes distances in memory
ROTATION_ITERS = 50  # rounds of learning the rotation: faiss's default


class ProductQuantizer(nn.Module):
    def __init__(self, *, dim: int, levels: tuple[int, ...], train_items: int, rotation_iters: int):
        super().__init__()
        self.levels, self.train_items, self.rotation_iters = tuple(levels), train_items, rotation_iters
        size, positions = self.levels[0], len(self.levels)
        if len(set(self.levels)) != 1 or size & (size - 1) or not 2 <= size <= 65536:
            raise DataError(f"codebook.levels {list(levels)}: a product quantizer needs one size, a power of two, "
                            "for every position (e.g. 256,256,...)")
        self.width = -(-dim // positions) * positions  # the rotation's output: a multiple of the positions
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("rotation", torch.eye(self.width, dim))
        self.register_buffer("centroids", torch.zeros(positions, size, self.width // positions))

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) @ self.rotation.T

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (n, positions) and squared distances of the last part to all its codes (n, K)."""
        codes, last = [], []
        for start in range(0, len(x), CHUNK):
            parts = self.latent(x[start : start + CHUNK]).reshape(-1, len(self.levels), self.centroids.shape[2])
            dist = ((parts.pow(2).sum(-1, keepdim=True) - 2 * torch.einsum("npd,pkd->npk", parts, self.centroids))
                    + self.centroids.pow(2).sum(-1)[None])
            codes.append(dist.argmin(-1))
            last.append(dist[:, -1].clamp_min(0))
        return torch.cat(codes), torch.cat(last)

    def fit(self, x: np.ndarray, *, seed: int = 0) -> dict:
        import faiss

        x = np.ascontiguousarray(x, dtype=np.float32)
        rng = np.random.default_rng(seed)
        sample = x if len(x) <= self.train_items else x[np.sort(rng.choice(len(x), self.train_items, replace=False))]
        mean = sample.mean(0)
        centred = np.ascontiguousarray(sample - mean)
        positions, size = len(self.levels), self.levels[0]
        if len(centred) < size:
            raise DataError(f"a product quantizer with {size} codes per position needs at least {size} items, got "
                            f"{len(centred)}; use smaller levels")
        bits = int(np.log2(size))
        if self.rotation_iters > 0:
            opq = faiss.OPQMatrix(x.shape[1], positions, self.width)
            opq.niter = self.rotation_iters
            opq.pq = inner = _quiet_pq(self.width, positions, bits)  # kept referenced while faiss uses it
            opq.train(centred)
            del inner
            rotation = faiss.vector_to_array(opq.A).reshape(self.width, x.shape[1])
        else:  # plain product quantization
            rotation = np.eye(self.width, x.shape[1], dtype=np.float32)
        rotated = np.ascontiguousarray(centred @ rotation.T, dtype=np.float32)
        pq = _quiet_pq(self.width, positions, bits, seed)
        pq.train(rotated)
        self.mean.copy_(torch.from_numpy(mean))
        self.rotation.copy_(torch.from_numpy(rotation))
        self.centroids.copy_(torch.from_numpy(faiss.vector_to_array(pq.centroids).reshape(self.centroids.shape)))
        return {"epochs": 0, "train_items": len(sample)}

    @torch.no_grad()
    def reconstruction_mse(self, x: np.ndarray) -> float:
        """MSE between each (centred, rotated) embedding and its code vectors, on at most `train_items` items."""
        data = torch.from_numpy(x[: self.train_items]).float()
        codes, _ = self.assign(data)
        recon = torch.cat([self.centroids[p][codes[:, p]] for p in range(len(self.levels))], dim=1)
        return float((recon - self.latent(data)).pow(2).mean())


def _quiet_pq(width: int, positions: int, bits: int, seed: int | None = None):
    """A faiss product quantizer (seeded, or with faiss's own seed) that does not print a warning per k-means
    when a catalogue has fewer than 39 items per code (small catalogues are fine, just noisy)."""
    import faiss

    pq = faiss.ProductQuantizer(width, positions, bits)
    pq.cp.min_points_per_centroid = 1
    if seed is not None:
        pq.cp.seed = seed
    return pq
