"""Loaders for the public formats users have; each returns a canonical `RecDataset`."""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..dataset import RecDataset
from .amazon import load_amazon, load_amazon2023
from .lcrec import load_lcrec
from .movielens import load_movielens
from .p5 import load_p5
from .recbole import load_recbole

LOADERS = {
    "movielens": load_movielens,
    "amazon": load_amazon,
    "amazon2023": load_amazon2023,
    "lcrec": load_lcrec,
    "p5": load_p5,
    "recbole": load_recbole,
}


# the formats whose item text is a separate JSON file, whose title field can be named (`title_field`)
TEXT_TABLE_FORMATS = ("lcrec", "p5")


def load_format(fmt: str, path: str | Path, item_text: str | Path | None = None,
                name: str | None = None, title_field: str | None = None) -> RecDataset:
    """Read `path` (a folder, or its main file) in format `fmt` into a canonical dataset."""
    if fmt not in LOADERS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(LOADERS)}")
    if not Path(path).exists():
        raise DataError(f"{path}: no such file or folder")
    if item_text is not None and not Path(item_text).is_file():
        raise DataError(f"--item-text {item_text}: no such file")
    if title_field:
        if fmt not in TEXT_TABLE_FORMATS:
            raise DataError(f"title_field: only the formats with a separate item-text file take it "
                            f"({', '.join(TEXT_TABLE_FORMATS)}), not {fmt!r}")
        return LOADERS[fmt](path, item_text=item_text, name=name, title_field=title_field)
    return LOADERS[fmt](path, item_text=item_text, name=name)
