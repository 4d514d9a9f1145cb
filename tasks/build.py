"""Assembling the multi-task SFT data: train / valid / test as a `datasets.DatasetDict`.

Training rows mix the chosen tasks (each optionally capped at `sample_per_task` rows); validation and test
rows are next-item (seqrec) rows, one per user, with the fixed template, so evaluation is deterministic and
decodes each user once (`all_templates` gives one row per template, LC-Rec's averaged variant).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np

from genrec.atomic import atomic_folder
from genrec.data import MAX_HISTORY, DataError, RecDataset, leave_one_out
from semid.tokenizer import SemanticIdTokenizer

from . import behaviour, items, templates
from .generate import Generator
from .rows import as_chat
from .text import ItemTexts

log = logging.getLogger("genrec.tasks")

TASKS = ("seqrec", "item2index", "index2item", "fusion", "search", "preference")
DEFAULT_TASKS = ("seqrec", "item2index", "index2item", "fusion", "search")


@dataclass
class TaskConfig:
    tasks: tuple[str, ...] = DEFAULT_TASKS  # from: seqrec, item2index, index2item, fusion, search, preference
    max_history: int = MAX_HISTORY     # items of history in a prompt (and in the evaluation split)
    history_loss: bool = False         # seqrec: one row per window, every history item a target (faster training)
    sample_per_task: int | None = None  # at most this many training rows per task
    seed: int = 0
    chat: bool = False                 # prompts as chat messages; trl applies the model's chat template
    all_templates: bool = False        # one evaluation row per template and user (LC-Rec's averaged variant)
    queries_per_item: int = 2          # search rows per item
    query_model: str | None = None     # e.g. smollm2: a local LM writes the search queries
    preference_model: str | None = None  # a local LM that writes preference sentences
    preference_users: int = 2000       # users given a preference row
    max_text_chars: int = 300          # item text in a prompt is cut to this
    cache_dir: str | None = None       # where local-LM answers are cached

    def __post_init__(self):
        self.tasks = check_tasks(tuple(self.tasks))
        if self.max_history < 1:
            raise DataError(f"tasks.max_history must be at least 1, not {self.max_history}")


def check_tasks(names) -> tuple[str, ...]:
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise DataError(f"unknown task(s) {', '.join(unknown)}; choose from {', '.join(TASKS)}")
    if not names:
        raise DataError("no task chosen")
    return tuple(names)


def _rows_for(task: str, split, texts: ItemTexts, cfg: TaskConfig, rng: np.random.Generator) -> list[dict]:
    if task == "seqrec":
        return behaviour.seqrec_train(split, texts, cfg.max_history, rng, cfg.history_loss)
    if task == "fusion":
        return behaviour.fusion_train(split, texts, cfg.max_history, rng)
    if task == "preference":
        generator = Generator(cfg.preference_model, cfg.cache_dir) if cfg.preference_model else None
        return behaviour.preference_train(split, texts, cfg.max_history, rng, generator, cfg.preference_users)
    if task == "item2index":
        return items.item2index(texts, rng)
    if task == "index2item":
        return items.index2item(texts, rng)
    generator = Generator(cfg.query_model, cfg.cache_dir) if cfg.query_model else None
    return items.search(texts, rng, cfg.queries_per_item, generator)


def build_sft(dataset: RecDataset, semid: SemanticIdTokenizer, cfg: TaskConfig | None = None) -> datasets.DatasetDict:
    cfg = cfg or TaskConfig()
    check_tasks(cfg.tasks)
    texts = ItemTexts(dataset, semid, cfg.max_text_chars)
    split = leave_one_out(dataset, cfg.max_history)
    rng = np.random.default_rng(cfg.seed)
    train: list[dict] = []
    for task in cfg.tasks:
        rows = _rows_for(task, split, texts, cfg, rng)
        if cfg.sample_per_task is not None and len(rows) > cfg.sample_per_task:
            keep = np.sort(rng.choice(len(rows), cfg.sample_per_task, replace=False))
            rows = [rows[i] for i in keep]
        train += rows
    if not train:
        raise DataError("no training rows: the dataset has no user with two training items and no item text")
    splits = {"train": train,
              "valid": behaviour.seqrec_eval(split.valid, texts, cfg.all_templates),
              "test": behaviour.seqrec_eval(split.test, texts, cfg.all_templates)}
    if cfg.chat:
        splits = {name: [{**r, **as_chat(r)} for r in rows] for name, rows in splits.items()}
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})


def summary(sft: datasets.DatasetDict) -> dict[str, dict[str, int]]:
    """Rows per task (families, e.g. fusion:codes_to_title counts as fusion) per split."""
    return {name: dict(Counter(t.split(":")[0] for t in part["task"])) for name, part in sft.items()}


def save_sft(sft: datasets.DatasetDict, out_dir: str | Path, cfg: TaskConfig, semid: SemanticIdTokenizer) -> None:
    """`save_to_disk` plus `tasks.json` (config, rows per task, the semantic IDs' fingerprint), atomically."""
    with atomic_folder(out_dir) as tmp:
        sft.save_to_disk(str(tmp))
        info = {"config": asdict(cfg), "rows": summary(sft), "semid_fingerprint": semid.fingerprint(),
                "eval_prompts": templates.eval_prompts()}
        (tmp / "tasks.json").write_text(json.dumps(info, indent=2))
