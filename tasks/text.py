"""How items appear in prompts: their codes, a display name, a cut description."""

from __future__ import annotations

import numpy as np

from genrec.data import DataError, RecDataset
from semid.tokenizer import SemanticIdTokenizer


class ItemTexts:
    """Per-item strings for prompts, aligned to the dataset's item indices."""

    def __init__(self, dataset: RecDataset, semid: SemanticIdTokenizer, max_chars: int = 300):
        row_of = {item_id: row for row, item_id in enumerate(semid.item_ids)}
        missing = [i for i in dataset.items["item_id"] if i not in row_of]
        if missing:
            raise DataError(f"the semantic IDs do not cover {len(missing)} of the dataset's {dataset.num_items} items "
                            f"(e.g. {missing[0]!r}); build the codebook from this dataset")
        self.codes = [semid.item_to_tokens(row_of[i]) for i in dataset.items["item_id"]]
        items = dataset.items.to_dict("records")
        self.titles = [item["title"] for item in items]
        self.descriptions = [_cut(item["description"], max_chars) for item in items]
        self.names = [_name(item) for item in items]
        self.items = items

    def history(self, items: np.ndarray) -> str:
        return ", ".join(self.codes[i] for i in items)

    def history_names(self, items: np.ndarray) -> str:
        return ", ".join(f'"{self.names[i]}"' for i in items)


def _cut(text: str | None, max_chars: int) -> str | None:
    if not text or len(text) <= max_chars:
        return text
    return text[: max_chars].rsplit(" ", 1)[0] + " ..."


def _name(item: dict) -> str:
    """Title, else brand + most specific category, else the original id."""
    if item["title"]:
        return item["title"]
    parts = [p for p in (item["brand"], item["categories"][-1] if len(item["categories"]) else None) if p]
    return " ".join(parts) if parts else f"item {item['item_id']}"
