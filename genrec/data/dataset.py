"""The canonical dataset every stage reads: items with text, users, and ordered interactions.

Inside, items and users are integers 0..N-1 (row positions); the original string ids are kept beside them.
On disk it is three parquet files written through `datasets` plus `dataset.json`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..atomic import atomic_folder
from ..errors import DataError
from .io import load_json
from .text import TEXT_FIELDS, has_text

log = logging.getLogger("genrec.data")

FORMAT_VERSION = 1
FILES = ("items.parquet", "users.parquet", "interactions.parquet", "dataset.json")


@dataclass
class RecDataset:
    """items: item_id + text fields; users: user_id (+ attributes where the format has them); interactions:
    user, item, timestamp (+ rating where the format has it), sorted per user."""

    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    name: str = "dataset"
    meta: dict = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return len(self.items)

    @property
    def num_users(self) -> int:
        return len(self.users)

    def sequences(self) -> list[np.ndarray]:
        """Each user's items in chronological order (interactions are kept sorted by user, then time)."""
        users = self.interactions["user"].to_numpy()
        items = self.interactions["item"].to_numpy()
        bounds = np.searchsorted(users, np.arange(self.num_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.num_users)]

    def item_index(self) -> dict[str, int]:
        return {item_id: i for i, item_id in enumerate(self.items["item_id"])}

    def titles(self) -> list[str]:
        """A display name per item: its title, else its original id."""
        return [t if isinstance(t, str) else i for t, i in zip(self.items["title"], self.items["item_id"])]

    # ---- building -------------------------------------------------------------------------------------

    @classmethod
    def from_records(
        cls,
        items: list[dict] | None,
        interactions: pd.DataFrame,
        name: str,
        meta: dict | None = None,
    ) -> RecDataset:
        """Validate, index and sort raw records.

        `interactions` has columns user_id, item_id and optionally timestamp (file order otherwise).
        `items` (from `text.make_item`) may be None when a format has no item file; then items are the ids
        seen in interactions. Interactions with unknown items are dropped with a counted warning; items
        nobody interacted with are dropped with a count in the log.
        """
        meta = dict(meta or {})
        if len(interactions) == 0:
            raise DataError(f"{name}: no interactions were read")
        inter = interactions.copy()
        inter["user_id"] = inter["user_id"].astype(str)
        inter["item_id"] = inter["item_id"].astype(str)
        if "timestamp" not in inter:
            inter["timestamp"] = np.arange(len(inter), dtype=np.int64)
            meta["order_only"] = True
        inter["timestamp"] = inter["timestamp"].astype(np.int64)

        if items is None:
            seen = pd.unique(inter["item_id"])
            items = [{"item_id": i, "title": None, "description": None, "categories": [], "brand": None}
                     for i in seen]
        extra = [key for key in items[0] if key not in ("item_id", *TEXT_FIELDS)] if items else []
        item_frame = pd.DataFrame(items, columns=["item_id", *TEXT_FIELDS, *extra])
        dup = item_frame["item_id"].duplicated(keep=False)
        if dup.any():
            first = item_frame.loc[dup, "item_id"].iloc[0]
            raise DataError(f"{name}: item id {first!r} appears {int((item_frame['item_id'] == first).sum())} "
                            f"times in the item table ({int(dup.sum())} rows share an id)")

        known = inter["item_id"].isin(set(item_frame["item_id"]))
        if not known.all():
            unknown = inter.loc[~known, "item_id"]
            log.warning("%s: dropped %d interactions with %d unknown items (e.g. %r), not in the item file",
                        name, len(unknown), unknown.nunique(), unknown.iloc[0])
            meta["dropped_unknown_item_interactions"] = int(len(unknown))
            inter = inter[known]
            if len(inter) == 0:
                raise DataError(f"{name}: no interaction refers to an item of the item file; are the ids aligned?")

        used = item_frame["item_id"].isin(set(inter["item_id"]))
        if not used.all():
            log.info("%s: %d items without interactions left out", name, int((~used).sum()))
            meta["dropped_items_without_interactions"] = int((~used).sum())
            item_frame = item_frame[used].reset_index(drop=True)
        return cls._indexed(item_frame, inter, name, meta)

    @classmethod
    def _indexed(cls, item_frame: pd.DataFrame, inter: pd.DataFrame, name: str, meta: dict) -> RecDataset:
        """Integer ids (items in item-table order, users in order of first appearance) and sorted rows."""
        item_frame = _text_as_objects(item_frame.reset_index(drop=True))
        item_of = pd.Series(np.arange(len(item_frame)), index=item_frame["item_id"])
        user_ids = pd.unique(inter["user_id"])
        user_of = pd.Series(np.arange(len(user_ids)), index=user_ids)
        frame = pd.DataFrame({
            "user": user_of.loc[inter["user_id"]].to_numpy().astype(np.int64),
            "item": item_of.loc[inter["item_id"]].to_numpy().astype(np.int64),
            "timestamp": inter["timestamp"].to_numpy(),
        })
        if "rating" in inter:  # explicit feedback, where the format has it (the CTR baselines' labels)
            frame["rating"] = inter["rating"].to_numpy()
        frame = frame.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
        missing = sum(not has_text(row) for row in item_frame.to_dict("records"))
        if missing:
            log.warning("%s: %d of %d items have no text", name, missing, len(item_frame))
        return cls(item_frame, pd.DataFrame({"user_id": user_ids}), frame, name, meta)

    def subset(self, keep: np.ndarray, note: str) -> RecDataset:
        """A new dataset with only the interactions where `keep` is true, re-indexed."""
        rows = self.interactions[keep]
        used_items = np.unique(rows["item"].to_numpy())
        items = self.items.iloc[used_items]
        inter = pd.DataFrame({
            "user_id": self.users["user_id"].to_numpy()[rows["user"].to_numpy()],
            "item_id": self.items["item_id"].to_numpy()[rows["item"].to_numpy()],
            "timestamp": rows["timestamp"].to_numpy(),
        })
        if "rating" in rows:
            inter["rating"] = rows["rating"].to_numpy()
        meta = {**self.meta, "preprocessing": [*self.meta.get("preprocessing", []), note]}
        dataset = RecDataset._indexed(items, inter, self.name, meta)
        attributes = self.users.set_index("user_id")
        if len(attributes.columns):  # user attributes follow the users that remain
            dataset.users = dataset.users.join(attributes, on="user_id")
        return dataset

    # ---- disk -----------------------------------------------------------------------------------------

    def save(self, out_dir: str | Path) -> Path:
        """Write atomically: a temporary folder beside `out_dir`, renamed when complete."""
        with atomic_folder(out_dir) as tmp:
            for file, table in self.to_hf().items():
                pq.write_table(table.data.table, tmp / f"{file}.parquet")
            info = {"format_version": FORMAT_VERSION, "name": self.name, "users": self.num_users,
                    "items": self.num_items, "interactions": len(self.interactions), "meta": self.meta}
            (tmp / "dataset.json").write_text(json.dumps(info, indent=2))
        return Path(out_dir)

    def to_hf(self) -> datasets.DatasetDict:
        """The three tables as a `datasets.DatasetDict` (items, users, interactions)."""
        return datasets.DatasetDict({
            "items": datasets.Dataset.from_pandas(self.items, preserve_index=False),
            "users": datasets.Dataset.from_pandas(self.users, preserve_index=False),
            "interactions": datasets.Dataset.from_pandas(self.interactions, preserve_index=False),
        })

    @classmethod
    def load(cls, data_dir: str | Path) -> RecDataset:
        data_dir = Path(data_dir)
        missing = [f for f in FILES if not (data_dir / f).is_file()]
        if missing:
            raise DataError(f"{data_dir}: not a genrec dataset folder (missing {', '.join(missing)}); "
                            "create one with `genrec data prepare`")
        info = load_json(data_dir / "dataset.json")
        if info.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{data_dir}/dataset.json: format version {info.get('format_version')} "
                            f"is not {FORMAT_VERSION}; prepare the data again")
        frames = {}
        for file in ("items", "users", "interactions"):
            path = data_dir / f"{file}.parquet"
            try:
                frames[file] = datasets.Dataset(pq.read_table(path)).to_pandas()
            except Exception as err:  # pyarrow raises several types for a corrupt file
                raise DataError(f"{path}: cannot be read ({err}); prepare the data again") from None
        frames["items"] = _text_as_objects(frames["items"])
        dataset = cls(frames["items"], frames["users"], frames["interactions"], info["name"], info.get("meta", {}))
        counts = (dataset.num_users, dataset.num_items, len(dataset.interactions))
        if counts != (info["users"], info["items"], info["interactions"]):
            raise DataError(f"{data_dir}: files hold {counts} users/items/interactions but dataset.json says "
                            f"{(info['users'], info['items'], info['interactions'])}; the folder is corrupt")
        return dataset


def _text_as_objects(items: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python objects with None for missing (pandas' string dtype would turn None into NaN,
    which is truthy), and categories as plain lists."""
    items = items.copy()
    for column in ("title", "description", "brand"):
        values = items[column].astype(object)
        items[column] = values.where(values.notna(), None)
    items["categories"] = items["categories"].map(list)
    return items
