"""Tasks built from user histories: seqrec, fusion (LC-Rec's asymmetric tasks), preference.

Training rows come only from each user's training part; evaluation rows use the split's validation and
test histories, so no row shows a held-out item as a target or inside a history.
"""

from __future__ import annotations

import logging

import numpy as np

from genrec.data import EvalSet, Split

from . import templates as T
from .generate import Generator
from .rows import make_row, prefixes, windows
from .text import ItemTexts

log = logging.getLogger("genrec.tasks")


def seqrec_train(split: Split, texts: ItemTexts, max_history: int, rng: np.random.Generator,
                 history_loss: bool = False) -> list[dict]:
    """One row per training position (LC-Rec), or with `history_loss` one per window of `max_history` items
    whose every item is a target (SASRec-style: the same supervision in about 1/6 of the rows on Beauty)."""
    rows = []
    for user, history, target in (windows if history_loss else prefixes)(split.train, max_history):
        k = int(rng.integers(len(T.SEQREC)))
        rows.append(make_row(T.SEQREC[k].format(history=texts.history(history)), texts.codes[target], "seqrec", k,
                             target, user, history, history_loss))
    short = sum(len(s) < 2 for s in split.train)
    if short:
        log.info("seqrec: %d users have fewer than 2 training items and give no training row", short)
    return rows


def seqrec_eval(evalset: EvalSet, texts: ItemTexts, all_templates: bool = False) -> list[dict]:
    """One row per user with the fixed template 0, or one per template with `all_templates`."""
    chosen = range(len(T.SEQREC)) if all_templates else [0]
    return [make_row(T.SEQREC[k].format(history=texts.history(h)), texts.codes[t], "seqrec", k, t, u, h)
            for u, h, t in zip(evalset.users, evalset.histories, evalset.targets) for k in chosen]


def fusion_train(split: Split, texts: ItemTexts, max_history: int, rng: np.random.Generator) -> list[dict]:
    """Per training position, one of: codes -> next title, codes -> next description, titles -> next codes."""
    rows = []
    for user, history, target in prefixes(split.train, max_history):
        options = ["titles_to_codes"]
        options += ["codes_to_title"] if texts.titles[target] else []
        options += ["codes_to_description"] if texts.descriptions[target] else []
        kind = options[int(rng.integers(len(options)))]
        k = int(rng.integers(len(T.FUSION[kind])))
        template = T.FUSION[kind][k]
        if kind == "titles_to_codes":
            prompt, completion = template.format(titles=texts.history_names(history)), texts.codes[target]
        else:
            prompt = template.format(history=texts.history(history))
            completion = texts.titles[target] if kind == "codes_to_title" else texts.descriptions[target]
        rows.append(make_row(prompt, completion, f"fusion:{kind}", k, target, user, history))
    return rows


def preference_train(split: Split, texts: ItemTexts, max_history: int, rng: np.random.Generator,
                     generator: Generator | None, max_users: int = 2000) -> list[dict]:
    """History codes -> a preference sentence written by a local LM from the history's titles."""
    if generator is None:
        log.info("preference: no --preference-model given; task skipped")
        return []
    users = [u for u, s in enumerate(split.train) if len(s) >= 2]
    if len(users) > max_users:
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    histories = [split.train[u][-max_history:] for u in users]
    asks = [f"A shopper chose these items, oldest first: {texts.history_names(h)}. In one sentence, describe "
            "what this shopper likes." for h in histories]
    answers = generator.generate(asks)
    rows = []
    for user, history, answer in zip(users, histories, answers):
        if answer:
            k = int(rng.integers(len(T.PREFERENCE)))
            rows.append(make_row(T.PREFERENCE[k].format(history=texts.history(history)), answer, "preference", k,
                                 -1, user, history))
    log.info("preference: %d rows (%d empty generations skipped)", len(rows), len(users) - len(rows))
    return rows
