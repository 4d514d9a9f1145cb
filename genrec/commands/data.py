"""`genrec data prepare | stats | synthetic | download`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from ..atomic import check_output, mark
from ..config import section
from ..data import DataConfig, RecDataset, SyntheticConfig, dataset_stats, format_stats, load_dataset, make_synthetic


@dataclass
class PrepareConfig(DataConfig):
    out: str = ""                  # output dataset folder
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def prepare(cfg: PrepareConfig) -> int:
    check_output(cfg.out, inputs=(cfg.path, cfg.item_text), overwrite=cfg.overwrite)
    return save(load_dataset(cfg), cfg.out)


def save(dataset: RecDataset, out: str) -> int:
    """Write the dataset folder and say what is in it."""
    dataset.save(out)
    print(format_stats(dataset_stats(dataset)))
    print(f"saved to {out}")
    return 0


@dataclass
class StatsConfig:
    dir: str = ""                  # a prepared dataset folder
    json: bool = False             # print JSON instead of a table


def stats(cfg: StatsConfig) -> int:
    numbers = dataset_stats(RecDataset.load(cfg.dir))
    print(json.dumps(numbers, indent=2) if cfg.json else format_stats(numbers))
    return 0


@dataclass
class SyntheticCommand(SyntheticConfig):
    out: str = ""                  # output dataset folder
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def synthetic(cfg: SyntheticCommand) -> int:
    check_output(cfg.out, overwrite=cfg.overwrite)
    return save(make_synthetic(section(cfg, SyntheticConfig)), cfg.out)


@dataclass
class DownloadConfig:
    source: Literal["movielens", "amazon2023"] | None = None  # where from
    name: str = ""                 # ml-100k / ml-1m / ml-latest-small / ml-latest, or an Amazon 2023 category
    out: str = ""                  # folder for the raw files
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def download(cfg: DownloadConfig) -> int:
    from ..data.download import download_amazon2023, download_movielens

    mark(check_output(cfg.out, overwrite=cfg.overwrite))
    folder = (download_movielens if cfg.source == "movielens" else download_amazon2023)(cfg.name, cfg.out)
    print(f"downloaded to {folder}; next: genrec data prepare --format {cfg.source} --path {folder} --out DIR")
    return 0
