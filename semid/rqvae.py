"""RQ-VAE (TIGER / LC-Rec): an MLP encoder, residual vector quantization, an MLP decoder.

Quantization is `vector_quantize_pytorch.ResidualVQ` with EMA codebooks, k-means initialisation on the first
(large) batch and dead-code replacement: the prototype here saw k-means on the untrained encoder use about
62 of 256 codes per level until dead codes were replaced. Inputs are standardised per dimension first.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from vector_quantize_pytorch import ResidualVQ

from .collaborative import contrastive_loss
from .residual import reconstruct, residual_assign

log = logging.getLogger("genrec.semid")


@dataclass
class RQVAETrainConfig:
    epochs: int = 300
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.05
    patience: int = 40          # epochs without validation improvement before stopping
    eval_every: int = 5


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.SiLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    def __init__(self, *, dim: int, levels: tuple[int, ...], hidden: tuple[int, ...] = (512, 256, 128),
                 latent_dim: int = 32, commitment_weight: float = 0.25, dropout: float = 0.0,
                 kmeans_iters: int = 20, dead_code_threshold: float = 2.0, decay: float = 0.95):
        super().__init__()
        self.levels = tuple(levels)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.encoder = _mlp([dim, *hidden, latent_dim], dropout)
        self.decoder = _mlp([latent_dim, *reversed(hidden), dim], dropout)
        self.rq = ResidualVQ(dim=latent_dim, codebook_size=self.levels, kmeans_init=True, kmeans_iters=kmeans_iters,
                             threshold_ema_dead_code=dead_code_threshold, decay=decay,
                             commitment_weight=commitment_weight)

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.standardise(x))

    def codebooks(self) -> list[torch.Tensor]:
        return [layer._codebook.embed[0] for layer in self.rq.layers]

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """codes (n, levels) and squared distances to every last-level code (n, K_last)."""
        return residual_assign(self.latent(x), self.codebooks())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction loss, commitment loss, quantized latents) on a batch of raw embeddings."""
        target = self.standardise(x)
        quantized, _, commit = self.rq(self.encoder(target))
        recon = nn.functional.mse_loss(self.decoder(quantized), target)
        return recon, commit.sum(), quantized

    @torch.no_grad()
    def quantize(self, data: torch.Tensor) -> torch.Tensor:
        """The sum of each item's code vectors, codes chosen by residual assignment (as the codebook is read)."""
        self.eval()
        codes, _ = residual_assign(self.latent(data), self.codebooks())
        return reconstruct(codes, self.codebooks())

    def reconstruction_mse(self, x: np.ndarray) -> float:
        """MSE of decode(quantize(encode(x))) on standardised embeddings."""
        data = torch.from_numpy(x).float()
        with torch.no_grad():
            return float(nn.functional.mse_loss(self.decoder(self.quantize(data)), self.standardise(data)))

    def validation_loss(self, x: torch.Tensor, targets: torch.Tensor | None, weight: float) -> tuple[float, dict]:
        """What picks the kept weights: reconstruction MSE, plus the weighted collaborative loss when there is one."""
        recon = self.reconstruction_mse(x.numpy())
        if targets is None:
            return recon, {"val_recon_mse": recon}
        collaborative = float(contrastive_loss(self.quantize(x), targets))  # quantize() runs without gradients
        return recon + weight * collaborative, {"val_recon_mse": recon, "val_collaborative_loss": collaborative}

    def fit(self, x: np.ndarray, *, seed: int = 0, train: RQVAETrainConfig | None = None,
            collaborative: np.ndarray | None = None, collaborative_weight: float = 0.0) -> dict:
        """Train with Adam; keep the weights with the best validation loss; stop when it stalls.

        `collaborative` (items, latent_dim) adds LETTER's contrastive term with weight `collaborative_weight`."""
        cfg = train or RQVAETrainConfig()
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        data = torch.from_numpy(x).float()
        targets = None if collaborative is None else torch.from_numpy(collaborative).float()
        order = torch.randperm(len(data), generator=gen)
        n_val = int(len(data) * cfg.val_fraction) if len(data) >= 200 else 0
        fit_index = order[n_val:]
        val_index = order[:n_val] if n_val else fit_index  # tiny sets: validate on the training rows
        fit_rows, val_rows = data[fit_index], data[val_index]
        val_targets = None if targets is None else targets[val_index]
        self.mean.copy_(fit_rows.mean(0))
        self.std.copy_(fit_rows.std(0).clamp_min(1e-6))
        batch_size = min(cfg.batch_size, len(fit_rows))
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best, best_state, stale, history = float("inf"), None, 0, []
        bar = tqdm(range(cfg.epochs), desc="rq-vae", leave=False)
        for epoch in bar:
            self.train()
            perm = torch.randperm(len(fit_rows), generator=gen)
            for start in range(0, len(perm) - batch_size + 1, batch_size):  # full batches: k-means sees a large one
                rows = perm[start : start + batch_size]
                recon, commit, quantized = self(fit_rows[rows])
                loss = recon + commit
                if targets is not None:
                    cf = contrastive_loss(quantized, targets[fit_index[rows]])
                    loss = loss + collaborative_weight * cf
                opt.zero_grad()
                loss.backward()
                opt.step()
            if (epoch + 1) % cfg.eval_every and epoch + 1 != cfg.epochs:
                continue
            score, parts = self.validation_loss(val_rows, val_targets, collaborative_weight)
            history.append({"epoch": epoch + 1, "recon_loss": recon.item(), "commit_loss": commit.item(),
                            **({"collaborative_loss": cf.item()} if targets is not None else {}), **parts})
            bar.set_postfix(val_loss=f"{score:.4f}")
            if score < best - 1e-5:
                best, best_state, stale = score, copy.deepcopy(self.state_dict()), 0
            else:
                stale += cfg.eval_every
                if stale >= cfg.patience:
                    log.info("rq-vae: early stop at epoch %d (best validation loss %.4f)", epoch + 1, best)
                    break
        if best_state is not None:
            self.load_state_dict(best_state)
        self.eval()
        return {"epochs": history[-1]["epoch"] if history else 0, "best_val_loss": best, "history": history}
