"""Residual assignment against a stack of codebooks: the step both quantizers share.

Level l picks the nearest code to what the earlier levels left unexplained. Besides the codes it returns
every item's squared distances to all codes of the last level, which the collision step needs to move an
item to its next-best code.
"""

from __future__ import annotations

import torch

CHUNK = 65536  # rows per assignment chunk, so a million items never hold a million x K distance matrix per level


def residual_assign(latent: torch.Tensor, codebooks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (n, levels) and squared distances to every last-level code (n, K_last)."""
    codes, last = [], []
    for start in range(0, len(latent), CHUNK):
        residual = latent[start : start + CHUNK].float()
        chunk_codes = []
        for codebook in codebooks:
            distances = torch.cdist(residual, codebook.float()).pow(2)
            index = distances.argmin(dim=1)
            chunk_codes.append(index)
            residual = residual - codebook[index]
        codes.append(torch.stack(chunk_codes, dim=1))
        last.append(distances)
    if not codes:
        return torch.zeros(0, len(codebooks), dtype=torch.long), torch.zeros(0, len(codebooks[-1]))
    return torch.cat(codes), torch.cat(last)


def reconstruct(codes: torch.Tensor, codebooks: list[torch.Tensor]) -> torch.Tensor:
    """Sum of the chosen code vectors, level by level."""
    return sum(codebook[codes[:, level]] for level, codebook in enumerate(codebooks))
