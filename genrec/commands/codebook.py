"""`genrec codebook build`: step 1, semantic IDs for every item."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from semid.codebook import CodebookConfig, build_codebook, save_codebook

from ..atomic import check_output
from ..config import section
from ..data import RecDataset

CACHE = Path.home() / ".cache" / "genrec"


@dataclass
class CodebookBuildConfig(CodebookConfig):
    data: str = ""                 # a dataset folder from `genrec data prepare`
    out: str = ""                  # output folder for the SemanticIdTokenizer
    embeddings: str | None = None  # a precomputed (items, dim) .npy instead of encoding text
    cache: str = str(CACHE / "embeddings")  # embedding cache folder
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def build(cfg: CodebookBuildConfig) -> int:
    check_output(cfg.out, inputs=(cfg.data, cfg.embeddings, cfg.collaborative), overwrite=cfg.overwrite)
    dataset = RecDataset.load(cfg.data)
    embeddings = np.load(cfg.embeddings) if cfg.embeddings else None
    codebook = section(cfg, CodebookConfig)  # the codebook settings alone (what stats.json records)
    tokenizer, stats = build_codebook(dataset, codebook, cache_dir=cfg.cache, embeddings=embeddings)
    save_codebook(tokenizer, {**stats, "config": asdict(codebook)}, cfg.out)
    print(summary(stats))
    print(f"saved to {cfg.out} (stats.json, code_usage.png)")
    return 0


def summary(stats: dict) -> str:
    """What a codebook build measured, in four lines."""
    sizes = stats["level_sizes"]
    lines = [f"{stats['items']:,} items -> {stats.get('unique_codes', stats['items']):,} unique IDs of {len(sizes)} "
             f"codes ({'x'.join(map(str, sizes))})" + (f" in {stats['seconds']:.0f} s" if "seconds" in stats else ""),
             f"collisions: {stats['collision_rate_before']:.2%} from the quantizer, {stats['collision_rate']:.2%} "
             f"after the uniqueness step ({stats['items_moved']} items moved)"]
    if "level_usage" in stats:
        lines.append("code usage per level: " + ", ".join(f"{u:.0%}" for u in stats["level_usage"])
                     + "; perplexity: " + ", ".join(f"{p:.0f}" for p in stats["level_perplexity"])
                     + f"; reconstruction MSE {stats['recon_mse']:.4f}")
        lines.append(f"consecutive items sharing their first code: {stats['transition_prefix_share']:.1%}")
    return "\n".join(lines)
