"""Item-level tasks: item2index, index2item (title, description, both), and item search.

They tie code tokens to item text. They use no user behaviour, so they cannot leak a held-out interaction.
"""

from __future__ import annotations

import logging

import numpy as np

from . import templates as T
from .generate import Generator
from .rows import make_row
from .text import ItemTexts

log = logging.getLogger("genrec.tasks")


def _kinds(texts: ItemTexts, item: int) -> list[str]:
    title, description = texts.titles[item], texts.descriptions[item]
    return [k for k, ok in (("title", title), ("description", description),
                            ("title_description", title and description)) if ok]


def _fields(texts: ItemTexts, item: int) -> dict:
    return {"title": texts.titles[item], "description": texts.descriptions[item], "codes": texts.codes[item]}


def item2index(texts: ItemTexts, rng: np.random.Generator) -> list[dict]:
    rows = []
    for item in range(len(texts.codes)):
        for kind in _kinds(texts, item):
            k = int(rng.integers(len(T.ITEM2INDEX[kind])))
            prompt = T.ITEM2INDEX[kind][k].format(**_fields(texts, item))
            rows.append(make_row(prompt, texts.codes[item], f"item2index:{kind}", k, item))
    return rows


def index2item(texts: ItemTexts, rng: np.random.Generator) -> list[dict]:
    rows = []
    for item in range(len(texts.codes)):
        for kind in _kinds(texts, item):
            k = int(rng.integers(len(T.INDEX2ITEM[kind])))
            fields = _fields(texts, item)
            completion = {"title": fields["title"], "description": fields["description"],
                          "title_description": f"{fields['title']}. {fields['description']}"}[kind]
            rows.append(make_row(T.INDEX2ITEM[kind][k].format(**fields), completion, f"index2item:{kind}", k, item))
    return rows


def derived_queries(item: dict) -> list[str]:
    """Search queries from the item's own text: its specific category, with brand or title words."""
    categories = [c for c in item["categories"] if c]
    specific = categories[-1] if categories else None
    brand, title = item["brand"], item["title"]
    queries = []
    if specific and brand:
        queries.append(f"{specific} by {brand}".lower())
    if title:
        head = title.split(",")[0]
        if brand and head.lower().startswith(brand.lower()):
            head = head[len(brand):]
        head = " ".join(head.split()[:6])
        if head:
            queries.append(head.lower())
    if len(categories) >= 2:
        queries.append(f"{categories[-2]} {categories[-1]}".lower())
    elif specific:
        queries.append(specific.lower())
    seen: list[str] = []
    for query in queries:
        if query not in seen:
            seen.append(query)
    return seen


def search(texts: ItemTexts, rng: np.random.Generator, queries_per_item: int = 2,
           generator: Generator | None = None) -> list[dict]:
    """query -> item codes. Queries are derived from item text, or written by a local LM when one is given."""
    if generator is not None:
        asks = [f"Write a short search query (at most 8 words) that a shopper would type to find this item: "
                f"{texts.names[i]}. {texts.descriptions[i] or ''}" for i in range(len(texts.codes))]
        per_item = [[q] if q else [] for q in generator.generate(asks)]
    else:
        per_item = [derived_queries(item) for item in texts.items]
    rows = []
    for item, queries in enumerate(per_item):
        if len(queries) > queries_per_item:
            queries = [queries[j] for j in sorted(rng.choice(len(queries), queries_per_item, replace=False))]
        for query in queries:
            k = int(rng.integers(len(T.SEARCH)))
            rows.append(make_row(T.SEARCH[k].format(query=query), texts.codes[item], "search", k, item))
    skipped = sum(not q for q in per_item)
    if skipped:
        log.info("search: %d items have no text to derive a query from", skipped)
    return rows
