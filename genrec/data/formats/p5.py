"""P5 format (TIGER / P5 / LETTER data): `sequential_data.txt` (`user item item ...`) + `datamaps.json`.

Item text lives in a separate JSON file (`--item-text`, or the folder's single `*item_text.json` /
`*.item.json`). Internal item ids follow the P5 ids, so internal id k is P5 id k+1 (= LETTER / LC-Rec id k).
Released semantic IDs (the folder's single `*.index.json`, e.g. LETTER's Yelp codes) are aligned the same way
and kept per item in `reference_codes`, so a run can train on them (`codebook.reference_codes: true`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..dataset import RecDataset
from ..io import find_one, iter_lines, load_json
from .common import align_text, discover, items_with_text, read_item_text


def load_p5(path: str | Path, item_text: str | Path | None = None, name: str | None = None,
            title_field: str | None = None) -> RecDataset:
    path = Path(path)
    folder = path.parent if path.is_file() else path
    seq_file = path if path.is_file() else find_one(folder, ["sequential_data.txt", "*sequential*.txt"], "sequence")
    maps_file = find_one(folder, ["datamaps.json"], "datamaps", required=False)
    maps = load_json(maps_file) if maps_file else {}
    if maps_file and "id2item" not in maps:
        raise DataError(f"{maps_file}: no id2item map, so the original item ids would be lost "
                        f"(keys: {', '.join(sorted(maps)) or 'none'})")
    id2item = {str(k): str(v) for k, v in maps.get("id2item", {}).items()}
    id2user = {str(k): str(v) for k, v in maps.get("id2user", {}).items()}

    if len(set(id2user.values())) != len(id2user):
        raise DataError(f"{maps_file}: id2user maps two P5 users to the same original id")
    users, items, seen = [], [], {}
    for number, line in iter_lines(seq_file):
        tokens = line.split()
        if len(tokens) < 2:
            raise DataError(f"{seq_file}: line {number} has a user but no items")
        if tokens[0] in seen:
            raise DataError(f"{seq_file}: user {tokens[0]!r} on line {number} already has line {seen[tokens[0]]}")
        seen[tokens[0]] = number
        if id2item and (bad := [t for t in tokens[1:] if t not in id2item]):
            raise DataError(f"{seq_file}: line {number}: item {bad[0]!r} is not in {maps_file.name} id2item")
        users += [tokens[0]] * (len(tokens) - 1)
        items += tokens[1:]
    frame = pd.DataFrame({"user_id": [id2user.get(u, u) for u in users], "item_id": items})

    ids = sorted(set(id2item) | set(items), key=_numeric)
    text_file = Path(item_text) if item_text else discover(folder, ("*item_text.json", "*.item.json"))
    text = read_item_text(ids, text_file, folder, title_field, asin_of=id2item or None)
    catalogue = items_with_text(ids, text)  # keyed by P5 id for now, renamed below
    index_file = discover(folder, ("*.index.json",), "released semantic IDs")
    if index_file:
        released = {str(k): {"codes": v} for k, v in load_json(index_file).items()}
        codes = align_text(ids, released, index_file)
        for item in catalogue:
            item["reference_codes"] = [str(c) for c in codes.get(item["item_id"], {}).get("codes", [])]
    for item in catalogue:
        item["item_id"] = id2item.get(item["item_id"], item["item_id"])
    frame["item_id"] = [id2item.get(i, i) for i in items]
    return RecDataset.from_records(catalogue, frame, name or folder.name, {"format": "p5", "source": str(folder)})


def _numeric(key: str):
    return (0, int(key), "") if key.isdigit() else (1, 0, key)
