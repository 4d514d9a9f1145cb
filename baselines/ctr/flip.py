"""FLIP (Wang et al., RecSys'24): fine-grained alignment of an ID model (DCNv2) with a language model.

Pretraining, on training rows only, adds three losses:
- field-level MLM: whole field values of the text are masked and predicted from each token's state joined with
  the row's full ID representation;
- masked feature prediction: whole ID fields take their learned mask embedding, and their features are predicted
  over that field's vocabulary from the masked ID representation plus attention over the full text;
- instance-level contrast: InfoNCE between the projected ID and text ([CLS]) representations of a batch.
Finetuning: FLIP-ID keeps the ID model alone; joint FLIP predicts sigmoid(alpha * ID logit + (1 - alpha) * text
logit) with alpha learned, trained on the fused, the ID and the text losses together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models import IdModel
from .text import MlmHead, TextEncoder, mask_fields


@dataclass
class FlipConfig:
    projection: int = 128     # width of the contrastive space
    temperature: float = 0.7  # InfoNCE temperature (FLIP's default, on unnormalised projections)
    mask_ratio: float = 0.15  # share of a row's fields masked for MLM and for feature prediction (at least one)
    feature_dim: int = 32     # width of the feature predictor's vectors


class ProjectionHead(nn.Module):
    def __init__(self, width_in: int, width: int, dropout: float = 0.2):
        super().__init__()
        self.project, self.fc = nn.Linear(width_in, width), nn.Linear(width, width)
        self.dropout, self.norm = nn.Dropout(dropout), nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = self.project(x)
        return self.norm(projected + self.dropout(self.fc(F.gelu(projected))))


def choose_fields(rows: int, fields: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(rows, fields) bool with the same number of fields, max(1, fields * ratio), chosen at random per row."""
    count = max(1, int(fields * ratio))
    order = torch.rand(rows, fields, generator=generator).argsort(dim=1)
    return torch.zeros(rows, fields, dtype=torch.bool).scatter_(1, order[:, :count], True)


class FlipPretrainer(nn.Module):
    def __init__(self, id_model: IdModel, text: TextEncoder, cfg: FlipConfig, field_of: np.ndarray, mask_id: int):
        super().__init__()
        self.id_model, self.text, self.cfg, self.mask_id = id_model, text, cfg, mask_id
        fields = id_model.embed.mask.shape[0]
        self.id_projection = ProjectionHead(id_model.width, cfg.projection)
        self.text_projection = ProjectionHead(text.hidden, cfg.projection)
        self.mlm = MlmHead(text.hidden + id_model.width, text)
        self.query = nn.Sequential(nn.Linear(id_model.width, text.hidden), nn.LayerNorm(text.hidden))
        self.feature_encoder = nn.Linear(id_model.width + text.hidden, fields * cfg.feature_dim)
        self.feature_out = nn.Embedding(len(field_of), cfg.feature_dim)
        self.register_buffer("field_of", torch.as_tensor(field_of), persistent=False)

    def losses(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        features, ids, mask, owner = batch["features"], batch["ids"], batch["mask"], batch["owner"]
        rows, fields = features.shape
        full = self.id_model.represent(features)
        states = self.text(ids, mask)

        id_vec, text_vec = self.id_projection(full), self.text_projection(states[:, 0])
        logits = id_vec @ text_vec.T / self.cfg.temperature
        same = torch.arange(rows)
        contrast = (F.cross_entropy(logits, same) + F.cross_entropy(logits.T, same)) / 2

        hidden = choose_fields(rows, fields, self.cfg.mask_ratio, generator)
        masked = self.id_model.represent(features, hidden)
        scores = (self.query(masked)[:, None] @ states.transpose(1, 2)).squeeze(1)
        context = (scores.masked_fill(~mask.bool(), float("-inf")).softmax(-1)[:, None] @ states).squeeze(1)
        vectors = self.feature_encoder(torch.cat([masked, context], -1)).view(rows, fields, -1)
        row, col = hidden.nonzero(as_tuple=True)
        feature_logits = vectors[row, col] @ self.feature_out.weight.T
        feature_logits = feature_logits.masked_fill(self.field_of[None, :] != col[:, None], float("-inf"))
        feature = F.cross_entropy(feature_logits, features[row, col])

        chosen = choose_fields(rows, fields, self.cfg.mask_ratio, generator)
        masked_ids, labels = mask_fields(ids, owner, chosen, self.mask_id)
        masked_states = self.text(masked_ids, mask)
        joined = torch.cat([masked_states, full[:, None].expand(-1, masked_states.shape[1], -1)], -1)
        language = self.mlm.loss(joined, labels, self.text.word_embeddings.weight)
        return {"mlm": language, "mfm": feature, "contrast": contrast}


class FlipJoint(nn.Module):
    """Joint FLIP finetuning: both models, fused logits with a learned alpha (zero at start, as FLIP)."""

    def __init__(self, id_model: IdModel, text: TextEncoder):
        super().__init__()
        self.id_model, self.text = id_model, text
        self.text_head = nn.Linear(text.hidden, 1)
        self.alpha = nn.Parameter(torch.zeros(1))

    def logits(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        id_logit = self.id_model.logit(batch["features"])
        text_logit = self.text_head(self.text(batch["ids"], batch["mask"])[:, 0]).squeeze(-1)
        return self.alpha * id_logit + (1 - self.alpha) * text_logit, id_logit, text_logit

    def loss(self, batch: dict) -> torch.Tensor:
        return sum(F.binary_cross_entropy_with_logits(logit, batch["labels"]) for logit in self.logits(batch))

    def predict(self, batch: dict) -> torch.Tensor:
        return self.logits(batch)[0]
