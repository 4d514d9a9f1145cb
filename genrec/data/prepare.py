"""Where a dataset comes from: a public format or the embedded synthetic shop, then the same preprocessing."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DataError
from .dataset import RecDataset
from .formats import LOADERS, load_format
from .preprocess import preprocess
from .synthetic import SyntheticConfig, make_synthetic


@dataclass
class DataConfig:
    format: str = "synthetic"      # synthetic (the embedded shop), or a public format (see docs/data.md)
    path: str | None = None        # the dataset folder or main file (real formats)
    item_text: str | None = None   # item text file, where the format keeps text apart
    title_field: str | None = None  # the item-text field holding the title, when not title/name (lcrec, p5)
    kcore: int = 0                 # iterative k-core filter (0: none)
    dedup: bool = False            # keep only the first of repeated user-item pairs
    name: str | None = None        # dataset name (default: from the path)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self):
        if isinstance(self.synthetic, dict):
            self.synthetic = SyntheticConfig(**self.synthetic)
        if self.format != "synthetic" and self.format not in LOADERS:
            raise DataError(f"data.format: unknown {self.format!r}; choose synthetic or one of {', '.join(LOADERS)}")
        if self.format != "synthetic" and not self.path:
            raise DataError(f"data.path is required for the {self.format} format")
        if self.kcore < 0:
            raise DataError(f"data.kcore must be >= 0, not {self.kcore}")


def load_dataset(cfg: DataConfig) -> RecDataset:
    """The dataset `cfg` describes, preprocessed."""
    if cfg.format == "synthetic":
        dataset = make_synthetic(cfg.synthetic)
    else:
        dataset = load_format(cfg.format, cfg.path, cfg.item_text, name=cfg.name, title_field=cfg.title_field)
    return preprocess(dataset, kcore_k=cfg.kcore, dedup=cfg.dedup)
