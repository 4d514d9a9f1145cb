"""Canonical dataset, loaders for public formats, preprocessing, leave-one-out split, statistics."""

from .dataset import RecDataset
from .errors import DataError
from .formats import LOADERS, load_format
from .preprocess import deduplicate, kcore, preprocess
from .split import EvalSet, Split, leave_one_out
from .stats import dataset_stats, format_stats
from .synthetic import SyntheticConfig, make_synthetic

__all__ = [
    "RecDataset", "DataError", "LOADERS", "load_format", "deduplicate", "kcore", "preprocess", "EvalSet",
    "Split", "leave_one_out", "dataset_stats", "format_stats", "SyntheticConfig", "make_synthetic",
]
