"""RecBole atomic files and UniSRec's variant of them.

RecBole: `X.inter` (tab-separated, typed header such as `user_id:token  item_id:token  timestamp:float`) and
`X.item` (`item_id:token` + text columns). UniSRec: `X.train.inter` / `X.valid.inter` / `X.test.inter`
(`user_id  item_id_list  item_id`, one row per target, histories cut at 50), `X.text` (`item_id  text`, keyed
by original id) and `X.item2index` (`original<TAB>index`). UniSRec's full sequences are rebuilt from its rows
and checked against its test rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..dataset import RecDataset
from ..io import find_one, iter_lines, timestamp
from ..text import make_item

_TEXT_COLUMNS = {"title": "title", "name": "title", "text": "description", "description": "description",
                 "categories": "categories", "category": "categories", "genre": "categories", "brand": "brand",
                 "sales_type": "categories"}


def _atomic(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header field names (types stripped) and the (line number, fields) rows of an atomic file."""
    lines = iter_lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise DataError(f"{path}: empty file") from None
    names = [column.split(":")[0] for column in header.rstrip("\n").split("\t")]
    rows = []
    for number, line in lines:
        parts = line.rstrip("\n").split("\t")
        if len(parts) != len(names):
            raise DataError(f"{path}: line {number} has {len(parts)} fields, the header names {len(names)}")
        rows.append((number, parts))
    return names, rows


def _column(names: list[str], wanted: str, path: Path) -> int:
    if wanted not in names:
        raise DataError(f"{path}: no {wanted!r} column (header: {', '.join(names)})")
    return names.index(wanted)


def _read_inter(path: Path) -> pd.DataFrame:
    names, rows = _atomic(path)
    user, item = _column(names, "user_id", path), _column(names, "item_id", path)
    frame = pd.DataFrame({"user_id": [r[user] for _, r in rows], "item_id": [r[item] for _, r in rows]})
    if "timestamp" in names:
        stamp = names.index("timestamp")
        frame["timestamp"] = [timestamp(r[stamp], path, n) for n, r in rows]
    return frame


def _read_items(path: Path, rename: dict[str, str]) -> list[dict]:
    names, rows = _atomic(path)
    key = _column(names, "item_id", path)
    items, seen = [], {}
    for number, row in rows:
        item_id = rename.get(row[key], row[key])
        if item_id in seen:
            raise DataError(f"{path}: item {item_id!r} on line {number} repeats line {seen[item_id]}")
        seen[item_id] = number
        fields: dict = {}
        for name, value in zip(names, row):
            target = _TEXT_COLUMNS.get(name)
            if target and value:
                fields[target] = f"{fields[target]} {value}" if target in fields else value
        if isinstance(fields.get("categories"), str):
            fields["categories"] = fields["categories"].split(",")
        items.append(make_item(item_id, **fields))
    return items


def _unisrec_sequences(stem: Path, index_to_orig: dict[str, str]) -> pd.DataFrame:
    """Full per-user sequences from UniSRec's train/valid/test rows."""
    parts = {}
    for split in ("train", "valid", "test"):
        path = stem.with_name(f"{stem.name}.{split}.inter")
        names, rows = _atomic(path)
        cols = [_column(names, c, path) for c in ("user_id", "item_id_list", "item_id")]
        parts[split] = (path, [(n, r[cols[0]], r[cols[1]].split(), r[cols[2]]) for n, r in rows])
    train_targets: dict[str, list[str]] = {}
    first_item: dict[str, str] = {}
    for _, user, history, target in parts["train"][1]:
        train_targets.setdefault(user, []).append(target)  # rows go from the last target backwards
        first_item[user] = history[0]
    valid = {user: (history, target) for _, user, history, target in parts["valid"][1]}
    users, items = [], []
    test_path, test_rows = parts["test"]
    for number, user, history, target in test_rows:
        if user not in valid:
            raise DataError(f"{test_path}: line {number}: user {user!r} has no row in the valid file")
        train = ([first_item[user]] + train_targets[user][::-1]) if user in train_targets else valid[user][0]
        sequence = train + [valid[user][1]]
        if sequence[-50:] != history:
            raise DataError(f"{test_path}: line {number}: user {user!r}'s history does not continue the "
                            "train and valid rows; the three files are not from one split")
        sequence.append(target)
        users += [user] * len(sequence)
        items += [index_to_orig.get(i, i) for i in sequence]
    return pd.DataFrame({"user_id": users, "item_id": items})


def load_recbole(path: str | Path, item_text: str | Path | None = None, name: str | None = None) -> RecDataset:
    path = Path(path)
    folder = path.parent if path.is_file() else path
    index_file = find_one(folder, ["*.item2index"], "item2index", required=False)
    index_to_orig = {}
    if index_file:
        for number, line in iter_lines(index_file):
            original, _, index = line.rstrip("\n").partition("\t")
            if not index:
                raise DataError(f"{index_file}: line {number} should be 'original_id<TAB>index'")
            index_to_orig[index] = original
    split_suffixes = (".train.inter", ".valid.inter", ".test.inter")
    plain_files = [path] if path.is_file() else sorted(
        p for p in folder.glob("*.inter") if not p.name.endswith(split_suffixes))
    if len(plain_files) > 1:
        raise DataError(f"{folder}: several .inter files ({', '.join(p.name for p in plain_files)}); pass one")
    if plain_files:
        interactions = _read_inter(plain_files[0])
        interactions["item_id"] = interactions["item_id"].map(lambda i: index_to_orig.get(i, i))
        stem = plain_files[0].with_suffix("")
    else:
        train = find_one(folder, ["*.train.inter"], "X.inter or X.train.inter")
        stem = train.with_name(train.name[: -len(".train.inter")])
        interactions = _unisrec_sequences(stem, index_to_orig)
    text_file = Path(item_text) if item_text else (
        find_one(folder, [f"{stem.name}.item"], "item", required=False)
        or find_one(folder, [f"{stem.name}.text"], "text", required=False))
    items = _read_items(text_file, index_to_orig) if text_file else None
    return RecDataset.from_records(items, interactions, name or stem.name,
                                   {"format": "recbole", "source": str(folder)})
