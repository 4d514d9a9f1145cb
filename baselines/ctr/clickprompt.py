"""ClickPrompt (Lin et al., WWW'24): the CTR model's representation of a row becomes K soft prompts for every
layer of the language model (prefix keys and values), trained with prompt-augmented MLM.

Pretraining (training rows only): BERT token masking on the row's text, ID features unmasked; the loss reaches
both models through the prompts. Finetuning: `clickprompt` fuses the language model's logit over the prompted
text with the CTR model's, alpha * LM + (1 - alpha) * CTR with alpha learned; `clickprompt-ctr` keeps the CTR
model alone, initialised from pretraining, so inference costs what the ID model costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import IdModel
from .text import MlmHead, TextEncoder, mask_tokens


@dataclass
class ClickPromptConfig:
    prompts: int = 10         # K prompts per layer (ClickPrompt's default)
    mask_ratio: float = 0.15  # share of text tokens predicted in PA-MLM
    alpha: float = 0.5        # starting weight of the language model's logit in the fused one


class PromptGenerator(nn.Module):
    """Row representation -> one (keys, values) pair per layer, each (B, heads, K, head_dim)."""

    def __init__(self, width: int, text: TextEncoder, prompts: int):
        super().__init__()
        self.text, self.prompts = [text.layers, text.heads], prompts
        self.net = nn.Sequential(nn.Linear(width, text.hidden), nn.Tanh(),
                                 nn.Linear(text.hidden, prompts * text.layers * 2 * text.hidden))

    def forward(self, rep: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        layers, heads = self.text
        out = self.net(rep).view(len(rep), self.prompts, layers * 2, heads, -1).permute(2, 0, 3, 1, 4)
        return [(out[2 * i], out[2 * i + 1]) for i in range(layers)]


class ClickPromptPretrainer(nn.Module):
    def __init__(self, id_model: IdModel, text: TextEncoder, cfg: ClickPromptConfig, tokenizer):
        super().__init__()
        self.id_model, self.text, self.cfg = id_model, text, cfg
        self.generator = PromptGenerator(id_model.width, text, cfg.prompts)
        self.mlm = MlmHead(text.hidden, text)
        self.special = sorted({tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id})
        self.mask_id, self.vocab = tokenizer.mask_token_id, len(tokenizer)

    def losses(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        ids = batch["ids"]
        special = torch.isin(ids, torch.tensor(self.special))
        masked, labels = mask_tokens(ids, special, self.cfg.mask_ratio, self.mask_id, self.vocab, generator)
        prefix = self.generator(self.id_model.represent(batch["features"]))
        states = self.text(masked, batch["mask"], prefix)
        return {"mlm": self.mlm.loss(states, labels, self.text.word_embeddings.weight)}


class ClickPromptJoint(nn.Module):
    def __init__(self, id_model: IdModel, text: TextEncoder, generator: PromptGenerator, alpha: float):
        super().__init__()
        self.id_model, self.text, self.generator = id_model, text, generator
        self.head = nn.Sequential(nn.Linear(text.hidden, text.hidden), nn.Tanh(), nn.Linear(text.hidden, 1))
        self.alpha = nn.Parameter(torch.tensor([alpha]))

    def predict(self, batch: dict) -> torch.Tensor:
        rep = self.id_model.represent(batch["features"])
        states = self.text(batch["ids"], batch["mask"], self.generator(rep))
        lm_logit = self.head(states[:, 0]).squeeze(-1)
        return self.alpha * lm_logit + (1 - self.alpha) * self.id_model.logit_of(rep)

    def loss(self, batch: dict) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.predict(batch), batch["labels"])
