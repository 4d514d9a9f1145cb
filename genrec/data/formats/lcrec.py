"""LC-Rec preprocessed data: `X.inter.json` ({user: [item, ...]}, 0-based), optional `X.item.json`
({item: {title, description, ...}}), `X.index.json` (released codes), `X.item2id` / `X.user2id` (original ids).

The released codes are kept per item in the `reference_codes` column, so a run can train on them and
compare LC-Rec's codebook with ours on the same model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..dataset import RecDataset
from ..io import find_one, iter_lines, load_json
from .common import discover, items_with_text, read_item_text


def _read_id_map(path: Path | None) -> dict[str, str]:
    """`original<TAB>id` lines -> {id: original}."""
    if path is None:
        return {}
    mapping = {}
    for number, line in iter_lines(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}: line {number} should be 'original_id<TAB>id', got {line[:60]!r}")
        original, index = parts
        if index in mapping:
            raise DataError(f"{path}: id {index!r} on line {number} is listed twice")
        mapping[index] = original
    return mapping


def load_lcrec(path: str | Path, item_text: str | Path | None = None, name: str | None = None,
               title_field: str | None = None) -> RecDataset:
    path = Path(path)
    folder = path.parent if path.is_file() else path
    inter_file = path if path.is_file() else find_one(folder, ["*.inter.json"], "LC-Rec interaction")
    stem = inter_file.name[: -len(".inter.json")]
    histories = load_json(inter_file)
    if not isinstance(histories, dict):
        raise DataError(f"{inter_file}: expected an object of user -> [item, ...]")
    item_orig = _read_id_map(find_one(folder, [f"{stem}.item2id"], "item2id", required=False))
    user_orig = _read_id_map(find_one(folder, [f"{stem}.user2id"], "user2id", required=False))

    users, items = [], []
    for user, history in histories.items():
        if not isinstance(history, list) or not history:
            raise DataError(f"{inter_file}: user {user!r} has no list of items")
        users += [user_orig.get(str(user), str(user))] * len(history)
        items += [str(i) for i in history]
    frame = pd.DataFrame({"user_id": users, "item_id": items})

    text_file = Path(item_text) if item_text else (
        find_one(folder, [f"{stem}.item.json"], "item", required=False)
        or discover(folder, ("*item_text.json",)))
    index_file = find_one(folder, [f"{stem}.index.json"], "index", required=False)
    codes = {str(k): v for k, v in load_json(index_file).items()} if index_file else {}
    ids = sorted(set(item_orig) | set(items) | set(codes), key=int)
    text = read_item_text(ids, text_file, folder, title_field, asin_of=item_orig or None)
    catalogue = items_with_text(ids, text, item_orig)
    if codes:
        for item_id, item in zip(ids, catalogue):
            item["reference_codes"] = [str(c) for c in codes.get(item_id, [])]
    frame["item_id"] = [item_orig.get(i, i) for i in items]
    meta = {"format": "lcrec", "source": str(folder)}
    return RecDataset.from_records(catalogue, frame, name or stem, meta)
