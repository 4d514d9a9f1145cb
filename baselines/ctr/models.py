"""The ID side: DeepFM (Guo et al. 2017) and DCNv2 (Wang et al. 2021) over one embedding table shared by all
fields. Both give a representation of a row (what FLIP projects and ClickPrompt turns into prompts) and a logit.

A masked field (FLIP's feature masking) takes its field's learned mask embedding and no first-order weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

IdArch = Literal["deepfm", "dcnv2"]


@dataclass
class IdModelConfig:
    # ClickPrompt's ML-1M settings: embeddings 32, an MLP of 6 x 256, 6 cross layers; low_rank > 0 gives FLIP's
    # DCNv2 (a mixture of `experts` low-rank cross layers, rank `low_rank`)
    arch: IdArch = "dcnv2"
    embed: int = 32
    hidden: int = 256
    mlp_layers: int = 6
    cross_layers: int = 6
    low_rank: int = 0
    experts: int = 4
    dropout: float = 0.0


def mlp(width_in: int, hidden: int, layers: int, dropout: float) -> nn.Sequential:
    blocks = []
    for i in range(layers):
        blocks += [nn.Linear(width_in if i == 0 else hidden, hidden), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*blocks)


class FieldEmbedding(nn.Module):
    def __init__(self, vocab_size: int, fields: int, dim: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, dim)
        self.first_order = nn.Embedding(vocab_size, 1)
        self.mask = nn.Parameter(torch.zeros(fields, dim))
        nn.init.normal_(self.table.weight, std=1e-2)
        nn.init.zeros_(self.first_order.weight)
        nn.init.normal_(self.mask, std=1e-2)

    def forward(self, features: torch.Tensor, masked: torch.Tensor | None = None):
        """(B, F, D) embeddings and the (B,) first-order term."""
        vectors, first = self.table(features), self.first_order(features).squeeze(-1)
        if masked is not None:
            vectors = torch.where(masked[..., None], self.mask.expand_as(vectors), vectors)
            first = first.masked_fill(masked, 0.0)
        return vectors, first.sum(-1)


class CrossLayer(nn.Module):
    """x0 * (W x + b) + x (DCNv2), or with rank > 0 a gated mixture of experts U tanh(C tanh(V^T x)) (DCN-Mix)."""

    def __init__(self, width: int, rank: int, experts: int):
        super().__init__()
        self.rank = rank
        if rank == 0:
            self.linear = nn.Linear(width, width)
        else:
            self.v = nn.Parameter(torch.randn(experts, width, rank) * width**-0.5)
            self.c = nn.Parameter(torch.randn(experts, rank, rank) * rank**-0.5)
            self.u = nn.Parameter(torch.randn(experts, rank, width) * rank**-0.5)
            self.bias = nn.Parameter(torch.zeros(width))
            self.gate = nn.Linear(width, experts, bias=False)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.rank == 0:
            return x0 * self.linear(x) + x
        low = torch.tanh(torch.einsum("bw,ewr->ber", x, self.v))
        low = torch.tanh(torch.einsum("ber,ers->bes", low, self.c))
        experts = x0[:, None] * (torch.einsum("ber,erw->bew", low, self.u) + self.bias)  # (B, E, W)
        weights = torch.softmax(self.gate(x), dim=-1)
        return (weights[..., None] * experts).sum(1) + x


class IdModel(nn.Module):
    """`represent(features, masked)` -> (B, width); `logit(features)` -> (B,)."""

    def __init__(self, cfg: IdModelConfig, vocab_size: int, fields: int):
        super().__init__()
        self.cfg = cfg
        self.embed = FieldEmbedding(vocab_size, fields, cfg.embed)
        flat = fields * cfg.embed
        self.deep = mlp(flat, cfg.hidden, cfg.mlp_layers, cfg.dropout)
        if cfg.arch == "dcnv2":
            self.cross = nn.ModuleList(CrossLayer(flat, cfg.low_rank, cfg.experts) for _ in range(cfg.cross_layers))
            self.width = flat + cfg.hidden
        else:
            self.width = cfg.hidden + 1  # the MLP's output and the FM term (ClickPrompt's prompt input)
        self.out = nn.Linear(self.width if cfg.arch == "dcnv2" else cfg.hidden, 1)

    def represent(self, features: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        vectors, first = self.embed(features, masked)
        flat = vectors.flatten(1)
        deep = self.deep(flat)
        if self.cfg.arch == "deepfm":
            pairwise = 0.5 * (vectors.sum(1).pow(2) - vectors.pow(2).sum(1)).sum(-1)
            return torch.cat([deep, (first + pairwise)[:, None]], dim=-1)
        cross = flat
        for layer in self.cross:
            cross = layer(flat, cross)
        return torch.cat([cross, deep], dim=-1)

    def logit_of(self, rep: torch.Tensor) -> torch.Tensor:
        if self.cfg.arch == "deepfm":  # MLP logit + first-order + FM terms, added with weight one
            return self.out(rep[:, :-1]).squeeze(-1) + rep[:, -1]
        return self.out(rep).squeeze(-1)

    def logit(self, features: torch.Tensor) -> torch.Tensor:
        return self.logit_of(self.represent(features))
