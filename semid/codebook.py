"""Building an item codebook end to end: text -> embeddings -> quantizer -> unique semantic IDs + stats."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from genrec.atomic import atomic_folder
from genrec.errors import DataError

from .collaborative import load_item_vectors, to_latent_width, transition_prefix_share, unit_rows
from .collisions import collision_rate, make_unique, uniform_mapping
from .pq import ROTATION_ITERS
from .quantizers import build_quantizer
from .rqvae import RQVAETrainConfig
from .text import DEFAULT_FIELDS, EncoderConfig, TextTemplate, check_embeddings, embed_texts
from .tokenizer import SemanticIdTokenizer

if TYPE_CHECKING:  # a dataset is only read here; importing genrec.data would load pandas for nothing
    from genrec.data import RecDataset

log = logging.getLogger("genrec.semid")


@dataclass
class CodebookConfig:
    # RQ-VAE, training-free residual k-means, or optimised product quantization (long unordered IDs, RPG)
    quantizer: Literal["rqvae", "rqkmeans", "opq"] = "rqvae"
    levels: tuple[int, ...] = (256, 256, 256)  # codebook size per level (one code per level; opq: e.g. 32 x 256)
    train_items: int = 100_000               # rqkmeans, opq: fitted on a seeded sample of at most this many items
    rotation_iters: int = ROTATION_ITERS     # opq: rounds of learning the rotation (faiss's default; 0: plain PQ)
    seed: int = 0
    fields: tuple[str, ...] = DEFAULT_FIELDS  # item fields in the embedded text
    missing_text: Literal["placeholder", "error"] = "placeholder"  # items without text: their id stands in, or fail
    encoder: str = "sentence-transformers/all-MiniLM-L6-v2"  # text encoder (hub name, folder, or alias)
    # mean-pool: any transformers model, masked mean of the last layer (as LC-Rec embeds with LLaMA)
    encoder_kind: Literal["sentence-transformers", "mean-pool"] = "sentence-transformers"
    # RQ-VAE
    hidden: tuple[int, ...] = (512, 256, 128)  # encoder MLP widths (the decoder mirrors them)
    latent_dim: int = 32                     # width of the quantized latent
    commitment_weight: float = 0.25
    dead_code_threshold: float = 2.0         # codes used fewer times per batch are re-seeded
    kmeans_iters: int = 20                   # k-means iterations of the codebook initialisation
    train: RQVAETrainConfig = field(default_factory=RQVAETrainConfig)  # epochs, batch size, learning rate, ...
    # collaborative codes: item vectors of a trained sequential model; rqvae: LETTER's contrastive term,
    # rqkmeans / opq: quantize the text embedding next to the item's vector (see with_collaborative)
    collaborative: str | None = None         # a .npy (items, d) or a saved baseline folder; `sasrec` in genrec run
    collaborative_weight: float = 1.0        # rqvae: LETTER's alpha; opq, rqkmeans: the item vector's norm (text: 1)
    # collision handling
    uniform_mapping: bool = True             # LC-Rec's Sinkhorn step on the last level before the uniqueness step
    sinkhorn_epsilon: float = 0.003
    sinkhorn_iters: int = 50
    # released codes instead of a quantizer (e.g. LC-Rec's Instruments index.json, read by the lcrec format)
    reference_codes: bool = False

    def __post_init__(self):
        """Checked when the config is built, so a recipe fails before the embeddings are computed."""
        if self.collaborative_weight < 0:
            raise DataError(f"codebook.collaborative_weight must be >= 0, got {self.collaborative_weight}")

    def quantizer_spec(self) -> dict:
        spec = {"kind": self.quantizer, "levels": list(self.levels)}
        if self.quantizer != "rqvae":
            spec["train_items"] = self.train_items
        if self.quantizer == "opq":
            spec["rotation_iters"] = self.rotation_iters
        if self.quantizer == "rqvae":
            spec.update(hidden=list(self.hidden), latent_dim=self.latent_dim,
                        commitment_weight=self.commitment_weight, dead_code_threshold=self.dead_code_threshold,
                        kmeans_iters=self.kmeans_iters)
        return spec


def level_stats(codes: np.ndarray, level_sizes: list[int]) -> tuple[list[float], list[float]]:
    """Per level: share of codes used, and perplexity (exp of the entropy of code frequencies)."""
    usage, perplexity = [], []
    for level, size in enumerate(level_sizes):
        counts = np.bincount(codes[:, level], minlength=size)
        p = counts[counts > 0] / counts.sum()
        usage.append(float((counts > 0).mean()))
        perplexity.append(float(np.exp(-(p * np.log(p)).sum())))
    return usage, perplexity


def build_codebook(dataset: RecDataset, cfg: CodebookConfig, cache_dir: str | Path | None = None,
                   embeddings: np.ndarray | None = None) -> tuple[SemanticIdTokenizer, dict]:
    """Semantic IDs for every item of `dataset`, unique, with the statistics `stats.json` reports."""
    if cfg.reference_codes:
        return reference_tokenizer(dataset)
    if dataset.num_items < 2:
        raise DataError(f"{dataset.name}: {dataset.num_items} item(s); a codebook needs at least 2")
    capacity = math.prod(cfg.levels)
    if dataset.num_items > capacity:
        raise DataError(f"{dataset.num_items} items do not fit in the code space {'x'.join(map(str, cfg.levels))} "
                        f"= {capacity}; add a level or enlarge the codebooks")
    start = time.perf_counter()
    template = TextTemplate(tuple(cfg.fields), missing=cfg.missing_text)
    encoder = EncoderConfig(cfg.encoder, cfg.encoder_kind)
    if embeddings is None:
        embeddings = embed_texts(template.texts(dataset), encoder, cache_dir)
    check_embeddings(embeddings, dataset.num_items)
    embed_seconds = time.perf_counter() - start

    collaborative, joint = None, {}
    if cfg.collaborative:
        vectors = load_item_vectors(cfg.collaborative, dataset.num_items)
        if cfg.quantizer == "rqvae":
            collaborative = to_latent_width(vectors, cfg.latent_dim)
        else:
            embeddings, joint = with_collaborative(embeddings, vectors, cfg.collaborative_weight)

    torch.manual_seed(cfg.seed)
    quantizer = build_quantizer(cfg.quantizer_spec(), dim=embeddings.shape[1])
    fit_info = (quantizer.fit(embeddings, seed=cfg.seed, train=cfg.train, collaborative=collaborative,
                              collaborative_weight=cfg.collaborative_weight) if cfg.quantizer == "rqvae"
                else quantizer.fit(embeddings, seed=cfg.seed))
    quantizer.eval()
    recon_mse = quantizer.reconstruction_mse(embeddings)
    if not np.isfinite(recon_mse):
        raise DataError(f"{dataset.name}: the {cfg.quantizer} training diverged (reconstruction error {recon_mse}); "
                        "lower codebook.train.lr or check the embeddings (nothing was saved)")
    raw, last_dist = quantizer.assign(torch.from_numpy(embeddings).float())
    raw, last_dist = raw.numpy(), last_dist.numpy()
    mapped = uniform_mapping(raw, last_dist, cfg.sinkhorn_epsilon, cfg.sinkhorn_iters) if cfg.uniform_mapping else raw
    codes = make_unique(mapped, last_dist)
    level_sizes = list(cfg.levels) + ([int(codes[:, -1].max()) + 1] if codes.shape[1] > len(cfg.levels) else [])

    config = {"quantizer": cfg.quantizer_spec(), "embedding_dim": int(embeddings.shape[1]),
              "template": asdict(template), "encoder": asdict(encoder), "seed": cfg.seed, **joint}
    tokenizer = SemanticIdTokenizer(codes, list(dataset.items["item_id"]), level_sizes, quantizer, config)
    usage, perplexity = level_stats(codes, level_sizes)
    stats = {
        "items": dataset.num_items,
        "unique_codes": len(np.unique(codes, axis=0)),
        "collision_rate_before": collision_rate(raw),
        "collision_rate_after_uniform_mapping": collision_rate(mapped),
        "collision_rate": collision_rate(codes),
        "items_moved": int((codes[:, : len(cfg.levels)] != raw).any(axis=1).sum()),
        "extra_level": len(level_sizes) > len(cfg.levels),
        "level_sizes": level_sizes,
        "level_usage": usage,
        "level_perplexity": perplexity,
        "recon_mse": recon_mse,
        "transition_prefix_share": transition_prefix_share(codes, dataset.sequences()),
        "quantizer": cfg.quantizer,
        "epochs": fit_info.get("epochs", 0),
        "seconds_embedding": round(embed_seconds, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    return tokenizer, stats


def with_collaborative(text: np.ndarray, vectors: np.ndarray, weight: float) -> tuple[np.ndarray, dict]:
    """The vector a training-free quantizer (rqkmeans, opq) codes when codes should be collaborative: each
    item's text embedding and its collaborative vector, each scaled to unit norm, the latter then to `weight`,
    side by side. OPQ's rotation mixes the two, so items that are close in text or consumed together share
    codes. Also returns what `add_items` needs to code a new item from its text alone: the text width and
    the collaborative part's mean, which stands in for the vector a new item does not have yet."""
    part = unit_rows(vectors) * weight
    joint = {"collaborative": {"text_dim": int(text.shape[1]), "weight": weight,
                               "mean": [round(float(v), 6) for v in part.mean(0)]}}
    return np.hstack([unit_rows(text), part]).astype(np.float32), joint


def reference_tokenizer(dataset: RecDataset):
    """Semantic IDs from a dataset's released codes (`reference_codes`, e.g. LC-Rec's index.json), with the
    collisions they contain resolved by our uniqueness step (moved to free last-level codes)."""
    if "reference_codes" not in dataset.items or not all(len(c) for c in dataset.items["reference_codes"]):
        raise DataError(f"{dataset.name}: not every item has reference codes (LC-Rec's X.index.json)")
    rows = [[int(token.split("_")[1].rstrip(">")) for token in codes] for codes in dataset.items["reference_codes"]]
    codes = np.asarray(rows, dtype=np.int64)
    sizes = [int(v) + 1 for v in codes.max(axis=0)]
    keep_own = np.ones((len(codes), sizes[-1]))  # cost 0 for an item's own last code: move as few as possible
    keep_own[np.arange(len(codes)), codes[:, -1]] = 0.0
    unique = make_unique(codes, keep_own)
    sizes += [int(unique[:, -1].max()) + 1] if unique.shape[1] > codes.shape[1] else []
    tokenizer = SemanticIdTokenizer(unique, list(dataset.items["item_id"]), sizes, None, {"source": "reference"})
    stats = {"items": len(codes), "collision_rate_before": collision_rate(codes), "collision_rate": 0.0,
             "items_moved": int((unique[:, : codes.shape[1]] != codes).any(axis=1).sum()), "level_sizes": sizes}
    return tokenizer, stats


def save_codebook(tokenizer: SemanticIdTokenizer, stats: dict, out_dir: str | Path) -> None:
    """The tokenizer folder plus stats.json and code_usage.png, written atomically."""
    with atomic_folder(out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, default=str))
        plot_usage(tokenizer.codes, tokenizer.level_sizes, tmp / "code_usage.png")


def plot_usage(codes: np.ndarray, level_sizes: list[int], path: str | Path) -> None:
    """Per level, items per code (codes sorted by count): a flat curve means an evenly used codebook."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(level_sizes), figsize=(4 * len(level_sizes), 3), squeeze=False)
    for level, (ax, size) in enumerate(zip(axes[0], level_sizes)):
        counts = np.sort(np.bincount(codes[:, level], minlength=size))[::-1]
        ax.bar(np.arange(size), counts, width=1.0)
        ax.set_title(f"level {level + 1}: {(counts > 0).mean():.0%} of {size} codes used")
        ax.set_xlabel("code (by count)")
        ax.set_ylabel("items")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
