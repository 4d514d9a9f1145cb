"""Helpers shared by the format loaders: item text files and their alignment to a format's item ids."""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import DataError
from ..io import load_json
from ..text import make_item

log = logging.getLogger("genrec.data")

_TITLE_KEYS = ("title", "name")
_DESCRIPTION_KEYS = ("description", "desc")
_CATEGORY_KEYS = ("categories", "category", "attributes")
_BRAND_KEYS = ("brand", "store")


def _first(raw: dict, keys: tuple[str, ...]):
    for key in keys:
        if raw.get(key) not in (None, "", []):
            return raw[key]
    return None


def item_from_raw(item_id: str, raw: dict) -> dict:
    """A canonical item from a raw record, whatever the source calls its text fields."""
    return make_item(item_id, _first(raw, _TITLE_KEYS), _first(raw, _DESCRIPTION_KEYS),
                     _first(raw, _CATEGORY_KEYS), _first(raw, _BRAND_KEYS))


def read_text_table(path: Path, title_field: str | None = None) -> dict[str, dict]:
    """An item-text JSON file: an object keyed by item id, or a list of objects with an id field.

    `title_field` names the field that holds the title when the file calls it something else (Sports has no
    titles, only IDGenRec's title-derived keywords in `idgenrec_textual_id`)."""
    table = _read_records(path)
    if title_field:
        if not any(record.get(title_field) not in (None, "") for record in table.values()):
            fields = sorted({key for record in table.values() for key in record})
            raise DataError(f"{path}: no record has a {title_field!r} field to use as the title "
                            f"(fields: {', '.join(fields) or 'none'})")
        table = {key: {**record, "title": record.get(title_field)} for key, record in table.items()}
    return table


def _read_records(path: Path) -> dict[str, dict]:
    data = load_json(path)
    if isinstance(data, list):
        table = {}
        for row, record in enumerate(data):
            key = _first(record, ("item_id", "id", "asin", "parent_asin")) if isinstance(record, dict) else None
            if key is None:
                raise DataError(f"{path}: entry {row} has no item_id / id / asin field")
            if str(key) in table:
                raise DataError(f"{path}: item id {key!r} appears twice (entry {row})")
            table[str(key)] = record
        return table
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"{path}: expected an object of item id -> {{title, ...}} or a list of such objects")
    return {str(k): v for k, v in data.items()}


def _shifted(keys: set[str], shift: int) -> set[str] | None:
    try:
        return {str(int(k) + shift) for k in keys}
    except ValueError:
        return None


def align_text(ids: list[str], table: dict[str, dict], path: Path, asin_of: dict[str, str] | None = None
               ) -> dict[str, dict]:
    """Map each of a format's item ids to its text record.

    Tried in order: join on an `asin` field when both sides have one; identical key sets; keys off by one
    (0-based text for 1-based ids, as LETTER's Yelp text is for P5 ids); else partial overlap, warned.
    """
    wanted = set(ids)
    if asin_of and any("asin" in r for r in table.values()):
        by_asin = {str(r["asin"]): r for r in table.values() if r.get("asin")}
        joined = {i: by_asin[asin_of[i]] for i in ids if asin_of.get(i) in by_asin}
        if joined:
            log.info("%s: item text joined by ASIN for %d of %d items", path.name, len(joined), len(ids))
            return joined
    keys = set(table)
    if keys == wanted:
        return {i: table[i] for i in ids}
    for shift in (1, -1):
        if _shifted(keys, shift) == wanted:
            log.info("%s: text keys are offset by %d from the item ids; aligned", path.name, shift)
            return {i: table[str(int(i) - shift)] for i in ids}
    joined = {i: table[i] for i in ids if i in table}
    if not joined:
        raise DataError(f"{path}: none of its {len(table)} keys matches an item id (e.g. {next(iter(keys))!r} vs "
                        f"{ids[0]!r}); is it the text file of this dataset?")
    log.warning("%s: text found for %d of %d items; the rest have none", path.name, len(joined), len(ids))
    return joined


def read_item_text(ids: list[str], text_file: Path | None, folder: Path, title_field: str | None = None,
                   asin_of: dict[str, str] | None = None) -> dict[str, dict]:
    """Each id's text record from the format's item-text file (none: no text), titles from `title_field`."""
    if not text_file:
        if title_field:
            raise DataError(f"{folder}: title_field {title_field!r} given but no item-text file found")
        return {}
    return align_text(ids, read_text_table(text_file, title_field), text_file, asin_of=asin_of)


def items_with_text(ids: list[str], text: dict[str, dict], original: dict[str, str] | None = None) -> list[dict]:
    """Canonical items for `ids` (stored under `original[id]` when the format renumbered them)."""
    original = original or {}
    return [item_from_raw(original.get(i, i), text.get(i, {})) for i in ids]


def discover(folder: Path, patterns: tuple[str, ...], what: str = "item text") -> Path | None:
    """The one file in `folder` matching `patterns`, logged, or None when there is none or several."""
    hits = sorted({p for pattern in patterns for p in folder.glob(pattern) if p.is_file()})
    if len(hits) == 1:
        log.info("using %s from %s", what, hits[0])
        return hits[0]
    return None
