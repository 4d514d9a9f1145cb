"""RecExplainer's alignment data: rows labelled by a trained recommender's predictions, not the ground truth.

A surrogate LLM trained on these rows imitates the recommender (Lei et al., KDD'24). Variants:
`B` (behaviour) writes a user as their recent history of titles and an item as its title; `I` (intention)
writes the tokens `<user>` and `<item>`, whose input embeddings the surrogate's connectors fill in from the
recommender's user and item vectors; `H` (hybrid) writes both. Every row carries `history` (the
recommender's input for `<user>`) and `items` (the item of each `<item>` token, in order).

User tasks, from the recommender's scores of every item after a history (history items excluded):
`next` (the title of its top-1), `rank` (candidates from its top 20 and the rest of the catalogue, put in its
order), `classify` (yes for an item from its top `positive_share` of the catalogue, no from its bottom
`negative_share`), `history` (the history's titles back from `<user>`; I and H only). Item tasks, from the
catalogue: an item's title (I and H), categories and brand, and a title from the categories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genrec.data import DataError, RecDataset

from . import templates as T
from .rows import make_row

USER_TOKEN, ITEM_TOKEN = "<user>", "<item>"
VARIANTS = ("B", "I", "H")
ALIGN_TASKS = ("next", "rank", "classify", "history", "item")
SEPARATOR = " | "


@dataclass
class AlignTaskConfig:
    tasks: tuple[str, ...] = ALIGN_TASKS
    candidates: int = 5            # items to rank in a `rank` row
    from_top: int = 20             # `rank` draws half its candidates from the recommender's top this-many
    positive_share: float = 0.2    # `classify`: yes for the recommender's top share of the catalogue ...
    negative_share: float = 0.5    # ... and no for its bottom share
    shown_history: int = 10        # history items written into a prompt, and asked back by `history`
    item_rows: int = 0             # item-task rows kept, a seeded sample (0: every item's)

    def __post_init__(self):
        unknown = [t for t in self.tasks if t not in ALIGN_TASKS]
        if unknown or not self.tasks:
            raise DataError(f"tasks.tasks: unknown {unknown} (choose from {', '.join(ALIGN_TASKS)})")
        if not (self.positive_share > 0 and self.negative_share > 0 and self.positive_share + self.negative_share <= 1):
            raise DataError("tasks.positive_share and tasks.negative_share must be positive and sum to at most 1")
        if self.candidates < 2 or self.shown_history < 1:
            raise DataError("tasks.candidates must be at least 2 and tasks.shown_history at least 1")


class Renderer:
    """How a variant writes users and items into prompts; collects the items behind `<item>` tokens."""

    def __init__(self, titles: list[str], variant: str, shown_history: int):
        if variant not in VARIANTS:
            raise DataError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        self.titles, self.variant, self.shown = titles, variant, shown_history
        self.items: list[int] = []

    def user(self, history: np.ndarray) -> str:
        titles = ", ".join(f'"{self.titles[i]}"' for i in history[-self.shown :])
        return {"B": f"A user who has interacted with {titles}", "I": f"The user {USER_TOKEN}",
                "H": f"The user {USER_TOKEN}, who has interacted with {titles}"}[self.variant]

    def item(self, item: int) -> str:
        if self.variant != "B":
            self.items.append(int(item))
        title = f'"{self.titles[item]}"'
        return {"B": title, "I": ITEM_TOKEN, "H": f"{ITEM_TOKEN} {title}"}[self.variant]

    def take_items(self) -> list[int]:
        """The items of the `<item>` tokens written since the last call, in order."""
        items, self.items = self.items, []
        return items

    def row(self, prompt: str, completion: str, task: str, template: int, target: int, user: int = -1,
            history: np.ndarray | None = None, candidates: np.ndarray | None = None) -> dict:
        """`candidates`: a `rank` row's items in the recommender's order."""
        row = make_row(prompt, " " + completion, task, template, target, user, history)
        row["items"] = self.take_items()
        row["candidates"] = [int(i) for i in (candidates if candidates is not None else [])]
        return row


def explain_prompts(renderer: Renderer, history: np.ndarray, item: int, recommended: bool) -> list[tuple[str, list]]:
    """The two questions `genrec explain` asks, each with the items of its `<item>` tokens: the `classify`
    evaluation prompt (yes / no), then why the recommender decided as it did."""
    question = T.ALIGN["classify"][0].format(user=renderer.user(history), item=renderer.item(item))
    yes_no = (question, renderer.take_items())
    why = T.EXPLAIN.format(user=renderer.user(history), item=renderer.item(item),
                           decision="recommends" if recommended else "does not recommend",
                           verdict="" if recommended else "not").replace("  ", " ")
    return [yes_no, (why, renderer.take_items())]


def top_count(new_items: int, share: float) -> int:
    """How many of the recommender's best new items count as its picks (at least one): the `classify` rule."""
    return max(1, int(round(share * new_items)))


def _template(task: str, rng: np.random.Generator | None) -> int:
    return 0 if rng is None else int(rng.integers(len(T.ALIGN[task])))


def user_rows(users: np.ndarray, histories: list[np.ndarray], scores: np.ndarray, titles: list[str], variant: str,
              cfg: AlignTaskConfig, rng: np.random.Generator, vary_templates: bool = True) -> list[dict]:
    """The user tasks for each (user, history), labelled by `scores` (users, items): the recommender's score of
    every item after that history. Without `vary_templates` every row uses template 0 (evaluation rows)."""
    if scores.shape != (len(users), len(titles)) or len(histories) != len(users):
        raise DataError(f"scores have shape {scores.shape}; expected ({len(users)} users, {len(titles)} items)")
    pick = rng if vary_templates else None
    render = Renderer(titles, variant, cfg.shown_history)
    rows = []
    for user, history, score in zip(users, histories, scores):
        history = np.asarray(history, dtype=np.int64)
        score = score.astype(np.float64).copy()
        score[history] = -np.inf  # the recommender's next item is a new one
        order = np.argsort(-score, kind="stable")[: len(titles) - len(np.unique(history))]
        if len(order) < max(cfg.candidates, 2):
            continue
        if "next" in cfg.tasks:
            k = _template("next", pick)
            rows.append(render.row(T.ALIGN["next"][k].format(user=render.user(history)), titles[order[0]], "next",
                                   k, order[0], user, history))
        if "rank" in cfg.tasks:
            top = rng.choice(order[: cfg.from_top], min(cfg.candidates // 2 + cfg.candidates % 2, cfg.from_top),
                             replace=False)
            rest = np.setdiff1d(order, top)
            candidates = np.concatenate([top, rng.choice(rest, cfg.candidates - len(top), replace=False)])
            candidates = candidates[rng.permutation(len(candidates))]
            k = _template("rank", pick)
            prompt = T.ALIGN["rank"][k].format(user=render.user(history),
                                               candidates=", ".join(render.item(i) for i in candidates))
            ranked = candidates[np.argsort(-score[candidates], kind="stable")]
            rows.append(render.row(prompt, SEPARATOR.join(titles[i] for i in ranked), "rank", k, ranked[0], user,
                                   history, ranked))
        if "classify" in cfg.tasks:
            positive = rng.random() < 0.5
            top, bottom = top_count(len(order), cfg.positive_share), top_count(len(order), cfg.negative_share)
            item = int(rng.choice(order[:top] if positive else order[-bottom:]))
            k = _template("classify", pick)
            prompt = T.ALIGN["classify"][k].format(user=render.user(history), item=render.item(item))
            rows.append(render.row(prompt, "yes" if positive else "no", "classify", k, item, user, history))
        if "history" in cfg.tasks and variant != "B":  # in B the prompt is the history already
            k = _template("history", pick)
            shown = history[-cfg.shown_history :]
            rows.append(render.row(T.ALIGN["history"][k].format(user=render.user(history)),
                                   SEPARATOR.join(titles[i] for i in shown), "history", k, shown[-1], user, history))
    return rows


def item_rows(dataset: RecDataset, variant: str, cfg: AlignTaskConfig, rng: np.random.Generator) -> list[dict]:
    """Item discrimination: an item's title (I and H), categories and brand, and a title from its categories."""
    if "item" not in cfg.tasks:
        return []
    titles = dataset.titles()
    render = Renderer(titles, variant, cfg.shown_history)
    rows = []
    for item, record in enumerate(dataset.items.to_dict("records")):
        categories = ", ".join(c for c in (record.get("categories") if record.get("categories") is not None else [])
                               if c)
        answers = {"item:title": titles[item] if variant != "B" else None, "item:categories": categories or None,
                   "item:brand": record.get("brand") or None}
        for task, answer in answers.items():
            if answer:
                k = _template(task, rng)
                rows.append(render.row(T.ALIGN[task][k].format(item=render.item(item)), answer, task, k, item))
        if categories:
            k = _template("item:from_categories", rng)
            rows.append(render.row(T.ALIGN["item:from_categories"][k].format(categories=categories), titles[item],
                                   "item:from_categories", k, item))
    if 0 < cfg.item_rows < len(rows):
        rows = [rows[i] for i in np.sort(rng.choice(len(rows), cfg.item_rows, replace=False))]
    return rows
