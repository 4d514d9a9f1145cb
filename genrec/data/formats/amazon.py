"""Amazon reviews, 2014 and 2018 releases (McAuley et al.), and the 2023 release (Hou et al.).

2014/2018: interactions from a ratings csv (2014: user,item,rating,time; 2018: item,user,rating,time; the
order is detected from which column holds ASINs) or a reviews json / json.gz; text from `meta_*.json(.gz)`,
which in 2014 is written as Python literals. 2023: `X.jsonl` reviews + `meta_X.jsonl`, items keyed by
`parent_asin` as in the official 2023 benchmark.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..dataset import RecDataset
from ..io import field, find_one, iter_records, read_text, timestamp
from .common import item_from_raw

log = logging.getLogger("genrec.data")
_ASIN = re.compile(r"^(B[0-9A-Z]{9}|\d{9}[\dX])$")


def _folder_and_files(path: Path, interaction_patterns: list[str], meta_patterns: list[str]):
    if path.is_file():
        return path.parent, path, find_one(path.parent, meta_patterns, "metadata", required=False)
    meta = find_one(path, meta_patterns, "metadata", required=False)
    for pattern in interaction_patterns:
        hits = sorted(p for p in path.glob(pattern) if p.is_file() and p != meta and not p.name.startswith("meta"))
        if len(hits) > 1:
            raise DataError(f"{path}: several interaction files ({', '.join(p.name for p in hits)}); pass one")
        if hits:
            return path, hits[0], meta
    raise DataError(f"{path}: no reviews (*.json, *.json.gz, *.jsonl) or ratings (*.csv) file")


def _read_ratings_csv(path: Path, meta_asins: set[str]) -> pd.DataFrame:
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: the ratings file is empty")
    frame = pd.read_csv(io.StringIO(text), header=None, dtype=str)
    if frame.shape[1] < 4:
        raise DataError(f"{path}: expected 4 columns (user, item, rating, time), found {frame.shape[1]}")
    if not frame.iloc[0, 3].isdigit():  # a header row
        frame = frame.iloc[1:]
    sample = frame.head(1000)

    def asin_share(col: int) -> float:
        values = sample[col]
        return (values.isin(meta_asins) if meta_asins else values.str.match(_ASIN)).mean()

    item_col = 0 if asin_share(0) > asin_share(1) else 1  # 2018 puts the item first
    stamps = pd.to_numeric(frame[3], errors="coerce")
    if stamps.isna().any():
        bad = int(stamps.isna().to_numpy().argmax())
        raise DataError(f"{path}: data row {bad + 1}: time {frame[3].iloc[bad]!r} is not a number")
    return pd.DataFrame({"user_id": frame[1 - item_col].to_numpy(), "item_id": frame[item_col].to_numpy(),
                         "timestamp": stamps.astype("int64").to_numpy()})


def _read_reviews(path: Path, user_key: str, item_key: str, time_key: str) -> pd.DataFrame:
    users, items, times = [], [], []
    for number, record in iter_records(path):
        users.append(str(field(record, user_key, path, number)))
        items.append(str(field(record, item_key, path, number)))
        times.append(timestamp(field(record, time_key, path, number), path, number))
    return pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times})


def _read_meta(path: Path | None, id_key: str) -> list[dict] | None:
    if path is None:
        return None
    items, seen = [], {}
    for number, record in iter_records(path):
        item_id = str(field(record, id_key, path, number))
        if item_id in seen:  # the raw dumps repeat a few ASINs; the first record wins, counted
            seen[item_id] += 1
            continue
        seen[item_id] = 1
        items.append(item_from_raw(item_id, record))
    repeats = sum(count - 1 for count in seen.values())
    if repeats:
        log.warning("%s: %d repeated %s records ignored (first kept)",
                    path.name, repeats, id_key)
    return items


def load_amazon(path: str | Path, item_text: str | Path | None = None, name: str | None = None) -> RecDataset:
    """Amazon 2014 / 2018: reviews json(.gz) or ratings csv, plus meta json(.gz)."""
    folder, inter_file, meta_file = _folder_and_files(
        Path(path), ["*.json.gz", "*.json", "*.csv"], ["meta_*.json.gz", "meta_*.json"])
    meta_file = Path(item_text) if item_text else meta_file
    items = _read_meta(meta_file, "asin")
    if inter_file.suffix == ".csv":
        interactions = _read_ratings_csv(inter_file, {i["item_id"] for i in items or []})
    else:
        interactions = _read_reviews(inter_file, "reviewerID", "asin", "unixReviewTime")
    return RecDataset.from_records(items, interactions, name or folder.name,
                                   {"format": "amazon", "source": str(inter_file)})


def load_amazon2023(path: str | Path, item_text: str | Path | None = None, name: str | None = None) -> RecDataset:
    """Amazon Reviews 2023: `X.jsonl` (user_id, parent_asin, timestamp in ms) + `meta_X.jsonl`."""
    folder, inter_file, meta_file = _folder_and_files(
        Path(path), ["*.jsonl.gz", "*.jsonl"], ["meta_*.jsonl.gz", "meta_*.jsonl"])
    meta_file = Path(item_text) if item_text else meta_file
    items = _read_meta(meta_file, "parent_asin")
    interactions = _read_reviews(inter_file, "user_id", "parent_asin", "timestamp")
    return RecDataset.from_records(items, interactions, name or folder.name,
                                   {"format": "amazon2023", "source": str(inter_file)})
