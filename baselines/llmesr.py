"""LLM-ESR (Liu et al., NeurIPS'24, "LLM-ESR: Large Language Models Enhancement for Long-tailed Sequential
Recommendation"), built from the paper's description:

- semantic view: frozen language-model item vectors through a trainable adapter;
- collaborative view: ID embeddings initialised by PCA of the same vectors;
- each view's sequence attends to the other's (causal cross-attention), then one shared causal self-attention
  encoder runs over both; user = [collaborative; semantic], item = [ID; adapted vector], so the score is the sum
  of the two views' scores (logit-level fusion by concatenation);
- retrieval-augmented self-distillation: each training user's N most similar users, by cosine similarity of
  their histories' text embeddings, are found once; the user's representation is pulled (MSE) toward the
  detached mean of theirs.

Deviations, said here and in README: item vectors come from MiniLM (or any encoder of `genrec codebook`), not
a 7B LLM; a user's text embedding is the mean of the vectors of their last max_len + 1 training items, not an
LLM embedding of a prompt; neighbour representations are refreshed once per epoch (a table), not recomputed every batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genrec.data import DataError

from .sequential import SequentialConfig, SequentialRecommender, _ItemSequenceModel


@dataclass
class LLMESRConfig(SequentialConfig):
    arch: str = "llmesr"
    neighbours: int = 10          # similar users whose mean representation a user is distilled toward
    distill_weight: float = 0.1


def similar_users(user_vectors: np.ndarray, count: int, batch_size: int = 4096) -> np.ndarray:
    """(users, count) indices of each user's most cosine-similar other users, most similar first."""
    if len(user_vectors) <= count:
        raise DataError(f"{len(user_vectors)} users cannot each have {count} other similar users")
    unit = user_vectors / np.maximum(np.linalg.norm(user_vectors, axis=1, keepdims=True), 1e-12)
    out = np.empty((len(unit), count), dtype=np.int64)
    for start in range(0, len(unit), batch_size):
        sims = unit[start : start + batch_size] @ unit.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf  # never oneself
        part = np.argpartition(-sims, count, axis=1)[:, :count]
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        out[start : start + len(sims)] = np.take_along_axis(part, order, axis=1)
    return out


def history_vectors(histories: list[np.ndarray], item_vectors: np.ndarray) -> np.ndarray:
    """A user's text embedding: the mean of their items' vectors."""
    return np.stack([item_vectors[np.asarray(h)].mean(axis=0) for h in histories])


def pca_init(vectors: np.ndarray, width: int, seed: int = 0) -> np.ndarray:
    """The first `width` principal components of `vectors`, scaled to a mean row norm of 1: one global factor,
    so the geometry is the PCA's, at the scale of unit-length text vectors whatever the encoder's scale."""
    from sklearn.decomposition import PCA

    reduced = PCA(width, random_state=seed).fit_transform(vectors)
    return (reduced / np.linalg.norm(reduced, axis=1).mean()).astype(np.float32)


class LLMESRModel(_ItemSequenceModel):
    def __init__(self, num_items: int, cfg: LLMESRConfig, llm_vectors: np.ndarray):
        super().__init__(num_items, cfg)
        if llm_vectors.shape[0] != num_items:
            raise DataError(f"item vectors have {llm_vectors.shape[0]} rows for {num_items} items")
        width, llm_dim = cfg.hidden, llm_vectors.shape[1]
        frozen = torch.zeros(num_items + 1, llm_dim)
        frozen[1:] = torch.as_tensor(llm_vectors, dtype=torch.float32)
        self.register_buffer("llm", frozen)
        self.adapter = nn.Sequential(nn.Linear(llm_dim, llm_dim // 2), nn.GELU(), nn.Linear(llm_dim // 2, width))
        with torch.no_grad():  # the ID view starts from the same knowledge, reduced to the model's width
            self.items.weight[1:] = torch.as_tensor(pca_init(llm_vectors, width, cfg.seed))
        self.positions = nn.Embedding(cfg.max_len, width)
        nn.init.normal_(self.positions.weight, std=0.02)
        self.id_to_sem = nn.MultiheadAttention(width, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.sem_to_id = nn.MultiheadAttention(width, cfg.heads, dropout=cfg.dropout, batch_first=True)
        layer = nn.TransformerEncoderLayer(width, cfg.heads, width, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(cfg.dropout)

    def semantic(self, ids: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.llm[ids])

    def item_table(self) -> torch.Tensor:
        items = torch.arange(1, self.num_items + 1)
        return torch.cat([self.items(items), self.semantic(items)], dim=-1)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """(batch, length) -> (batch, length, 2 * hidden): [collaborative; semantic] at each position."""
        length = seqs.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
        positions = self.positions(torch.arange(length))
        ids = self.dropout(self.items(seqs) * self.cfg.hidden ** 0.5 + positions)
        sem = self.dropout(self.semantic(seqs) + positions)
        ids, sem = (ids + self.id_to_sem(ids, sem, sem, attn_mask=causal, need_weights=False)[0],
                    sem + self.sem_to_id(sem, ids, ids, attn_mask=causal, need_weights=False)[0])
        views = [self.norm(self.encoder(view, mask=causal)) for view in (ids, sem)]  # one shared encoder
        return torch.cat(views, dim=-1)


class LLMESRRecommender(SequentialRecommender):
    """Trained, selected and evaluated like SASRec, plus the self-distillation loss."""

    def __init__(self, num_items: int, cfg: LLMESRConfig | None = None, llm_vectors: np.ndarray | None = None,
                 method: str | None = None):
        if llm_vectors is None:
            raise DataError("LLM-ESR needs item vectors (an encoder's embeddings of the item texts)")
        self.llm_vectors = np.asarray(llm_vectors, dtype=np.float32)
        super().__init__(num_items, cfg or LLMESRConfig(), method=method or "llmesr")
        self.neighbours: torch.Tensor | None = None
        self.teachers: torch.Tensor | None = None

    def _build_model(self, num_items: int) -> nn.Module:
        return LLMESRModel(num_items, self.cfg, self.llm_vectors)

    def _start_fit(self, seqs: torch.Tensor) -> None:
        histories = [row[row > 0].numpy() - 1 for row in seqs]
        self.neighbours = torch.from_numpy(similar_users(history_vectors(histories, self.llm_vectors),
                                                         self.cfg.neighbours))

    @torch.no_grad()
    def _start_epoch(self, seqs: torch.Tensor) -> None:
        """Every training user's current representation: the teachers' side of the distillation."""
        self.model.eval()
        self.teachers = torch.cat([self.model(seqs[s : s + 512, :-1])[:, -1] for s in range(0, len(seqs), 512)])

    def _extra_loss(self, hidden: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        target = self.teachers[self.neighbours[rows]].mean(dim=1)
        return self.cfg.distill_weight * nn.functional.mse_loss(hidden[:, -1], target)

    @classmethod
    def _restore(cls, info: dict, state: dict) -> LLMESRRecommender:
        return cls(info["num_items"], LLMESRConfig(**info["config"]), state["llm"][1:].numpy(), info.get("method"))
