"""Elephant in the room (Qu et al., RecSys'24, "Rethinking the Usage of Pre-trained Language Model in
Sequential Recommendation"): the best use of a pretrained language model found there is to behaviour-tune it
on the training sequences and use its item vectors to initialise (not freeze) an ID-based SASRec.

Behaviour tuning, RecFormer-style: a user's recent item texts, most recent first, become one text; the encoder
maps it to a vector that must pick the next item among every item's text vector (softmax over the catalogue,
cosine similarity / temperature 0.05). The catalogue's vectors are re-encoded every `refresh_every` steps
without gradient; the batch's target items are encoded with gradient, so both sides of the encoder learn.
Deviations from the paper: MiniLM (all-MiniLM-L6-v2, offline) instead of a BERT-size encoder, and a fixed
step budget instead of epochs, so it runs on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genrec.data import DataError, Split

from .sequential import SequentialConfig, SequentialRecommender

INITS = ("random", "plm", "tuned")


@dataclass
class BehaviourTuneConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-5
    temperature: float = 0.05
    history_items: int = 10     # items in a sequence text, most recent first
    item_chars: int = 200       # each item's text is cut to this in a sequence text
    refresh_every: int = 100    # steps between re-encodings of the whole catalogue
    max_length: int = 256       # tokens per text
    seed: int = 0


def load_encoder(name: str = "minilm"):
    """A trainable sentence-transformers encoder (the offline MiniLM by default)."""
    from semid.text import SentenceTransformerEncoder

    return SentenceTransformerEncoder(name).model


def encode(encoder, texts: list[str], batch_size: int = 128) -> np.ndarray:
    """Unit-length vectors of `texts` by `encoder`, without gradient."""
    vectors = encoder.encode(texts, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True,
                             show_progress_bar=len(texts) > batch_size)
    return vectors.float().cpu().numpy()


def _vectors_with_grad(encoder, texts: list[str]) -> torch.Tensor:
    return nn.functional.normalize(encoder(encoder.preprocess(texts))["sentence_embedding"], dim=-1)


def sequence_text(item_texts: list[str], history: np.ndarray, cfg: BehaviourTuneConfig) -> str:
    """A history as one text: the last `history_items` items, most recent first."""
    recent = list(history[-cfg.history_items:])[::-1]
    return " | ".join(item_texts[i][: cfg.item_chars] for i in recent)


def training_pairs(split: Split, count: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """`count` (history, next item) pairs drawn from the training sequences only."""
    rng = np.random.default_rng(seed)
    sequences = [np.asarray(s) for s in split.train if len(s) >= 2]
    if not sequences:
        raise DataError("behaviour tuning needs training sequences of at least two items")
    pairs = []
    for user in rng.integers(0, len(sequences), count):
        seq = sequences[user]
        t = int(rng.integers(1, len(seq)))
        pairs.append((seq[:t], int(seq[t])))
    return pairs


def behaviour_tune(encoder, item_texts: list[str], split: Split, cfg: BehaviourTuneConfig | None = None) -> dict:
    """Train `encoder` in place on next-item prediction over item texts; returns the loss curve."""
    cfg = cfg or BehaviourTuneConfig()
    torch.manual_seed(cfg.seed)
    pairs = training_pairs(split, cfg.steps * cfg.batch_size, cfg.seed)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.lr)
    encoder.max_seq_length = cfg.max_length
    losses, table = [], None
    bar = tqdm(range(cfg.steps), desc="behaviour tuning", leave=False)
    for step in bar:
        if step % cfg.refresh_every == 0:
            encoder.eval()
            table = torch.from_numpy(encode(encoder, item_texts))
        encoder.train()
        batch = pairs[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        targets = torch.tensor([t for _, t in batch])
        queries = _vectors_with_grad(encoder, [sequence_text(item_texts, h, cfg) for h, _ in batch])
        unique = torch.unique(targets)
        fresh = _vectors_with_grad(encoder, [item_texts[i] for i in unique.tolist()])
        catalogue = table.index_put((unique,), fresh)  # the batch's targets carry gradient, the rest do not
        loss = nn.functional.cross_entropy(queries @ catalogue.T / cfg.temperature, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    encoder.eval()
    return {"losses": losses}


def train_elephant(item_texts: list[str], split: Split, init: str = "tuned", cfg: SequentialConfig | None = None,
                   tune: BehaviourTuneConfig | None = None, encoder_name: str = "minilm") -> SequentialRecommender:
    """SASRec as wide as the encoder, item table initialised by `init`: random, plm (the encoder as
    released) or tuned (behaviour-tuned first); then trained like any SASRec (the table is not frozen)."""
    if init not in INITS:
        raise DataError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    cfg = cfg or SequentialConfig()
    encoder = load_encoder(encoder_name)
    cfg.hidden = int(encoder.get_embedding_dimension())
    vectors, tuning = None, {}
    if init == "tuned":
        tuning = behaviour_tune(encoder, item_texts, split, tune)
    if init != "random":
        vectors = encode(encoder, item_texts)
    model = SequentialRecommender(len(item_texts), cfg, item_init=vectors, method=f"elephant-{init}")
    model.fit(split)
    model.extra = {"behaviour_tuning_loss": tuning.get("losses", [])}
    return model
