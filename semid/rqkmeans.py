"""Residual k-means: a training-free quantizer (GRID finds it as strong as an RQ-VAE).

Level 1 clusters the (standardised) embeddings, level 2 clusters what level 1 leaves, and so on.
scikit-learn's k-means with k-means++ seeding, seeded, so the same input gives the same codebooks; fitted on
a seeded sample of at most `train_items` items (every item is then assigned), so a catalogue of a million
items takes minutes, not hours.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn

from .residual import reconstruct, residual_assign


class ResidualKMeans(nn.Module):
    def __init__(self, *, dim: int, levels: tuple[int, ...], train_items: int | None = None):
        super().__init__()
        self.levels, self.train_items = tuple(levels), train_items
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.codebook_list = nn.ParameterList(nn.Parameter(torch.zeros(k, dim), requires_grad=False) for k in levels)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def codebooks(self) -> list[torch.Tensor]:
        return [c.data for c in self.codebook_list]

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return residual_assign(self.latent(x), self.codebooks())

    def fit(self, x: np.ndarray, *, seed: int = 0, iters: int = 100) -> dict:
        if self.train_items is not None and len(x) > self.train_items:
            x = x[np.sort(np.random.default_rng(seed).choice(len(x), self.train_items, replace=False))]
        data = torch.from_numpy(x).float()
        self.mean.copy_(data.mean(0))
        self.std.copy_(data.std(0).clamp_min(1e-6))
        residual = self.latent(data).numpy().astype(np.float64)
        for level, k in enumerate(self.levels):
            km = KMeans(n_clusters=k, n_init=1, max_iter=iters, random_state=seed + level).fit(residual)
            centers = km.cluster_centers_
            self.codebook_list[level].data.copy_(torch.from_numpy(centers).float())
            residual = residual - centers[km.labels_]
        return {"epochs": 0}

    @torch.no_grad()
    def reconstruction_mse(self, x: np.ndarray) -> float:
        z = self.latent(torch.from_numpy(x).float())
        codes, _ = residual_assign(z, self.codebooks())
        return float((reconstruct(codes, self.codebooks()) - z).pow(2).mean())
