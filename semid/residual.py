"""Residual assignment against a stack of codebooks: the step both quantizers share.

Level l picks the nearest code to what the earlier levels left unexplained. Besides the codes it returns
every item's squared distances to all codes of the last level, which the collision step needs to move an
item to its next-best code.
"""

from __future__ import annotations

import torch


def residual_assign(latent: torch.Tensor, codebooks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (n, levels) and squared distances to every last-level code (n, K_last)."""
    residual = latent.float()
    codes = []
    distances = None
    for codebook in codebooks:
        distances = torch.cdist(residual, codebook.float()).pow(2)
        index = distances.argmin(dim=1)
        codes.append(index)
        residual = residual - codebook[index]
    return torch.stack(codes, dim=1), distances


def reconstruct(codes: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """Sum of the chosen code vectors, level by level."""
    return sum(codebook[codes[:, level]] for level, codebook in enumerate(codebooks))
