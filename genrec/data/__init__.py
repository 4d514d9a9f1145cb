"""Canonical dataset, loaders for public formats, preprocessing, leave-one-out split, statistics."""

from ..errors import DataError
from .dataset import RecDataset
from .formats import LOADERS, load_format
from .prepare import DataConfig, load_dataset
from .preprocess import deduplicate, kcore, preprocess
from .split import MAX_HISTORY, EvalSet, Split, leave_one_out
from .stats import dataset_stats, format_stats
from .synthetic import SyntheticConfig, make_synthetic

__all__ = [
    "RecDataset", "DataError", "DataConfig", "load_dataset", "LOADERS", "load_format", "deduplicate", "kcore",
    "preprocess", "EvalSet", "MAX_HISTORY", "Split", "leave_one_out", "dataset_stats", "format_stats",
    "SyntheticConfig", "make_synthetic",
]
