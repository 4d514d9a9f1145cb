"""Normalising raw item text fields into the canonical ones: title, description, categories, brand."""

from __future__ import annotations

import html

TEXT_FIELDS = ("title", "description", "categories", "brand")


def clean(value) -> str | None:
    """A string with HTML entities decoded and whitespace collapsed; None when empty."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    text = " ".join(html.unescape(str(value)).split())
    return text or None


def clean_categories(value) -> list[str]:
    """Flat, de-duplicated category list from a string, a list, or the 2014 list of category paths."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    flat: list[str] = []
    for entry in value:
        for part in entry if isinstance(entry, (list, tuple)) else [entry]:
            text = clean(part)
            if text and text not in flat:
                flat.append(text)
    return flat


def make_item(item_id, title=None, description=None, categories=None, brand=None) -> dict:
    return {
        "item_id": str(item_id),
        "title": clean(title),
        "description": clean(description),
        "categories": clean_categories(categories),
        "brand": clean(brand),
    }


def has_text(item: dict) -> bool:
    return bool(item.get("title") or item.get("description") or item.get("categories") or item.get("brand"))
