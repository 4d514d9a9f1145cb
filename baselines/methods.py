"""Every baseline by name: train one on a dataset's leave-one-out split, or load a saved one.

Settings: `model` holds the sequence model's (SequentialConfig, or LLMESRConfig for llmesr), checked by
`model_config` before any work; `tune` is Elephant's behaviour tuning, `knowledge` the knowledge writer's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from genrec.config import build
from genrec.data import DataError, RecDataset, Split

from . import METHODS
from .elephant import BehaviourTuneConfig, train_elephant
from .knowledge import KnowledgeConfig, KnowledgeRecommender, train_knowledge
from .llmesr import LLMESRConfig, LLMESRRecommender
from .sequential import SequentialConfig, SequentialRecommender


def item_texts(dataset: RecDataset) -> list[str]:
    from semid.text import TextTemplate

    return TextTemplate().texts(dataset)


def model_config(method: str, settings: dict) -> SequentialConfig:
    """The method's typed sequence-model settings from `settings` (unknown keys and wrong types fail here)."""
    if method not in METHODS:
        raise DataError(f"unknown baseline {method!r} (available: {', '.join(METHODS)})")
    if method.startswith("elephant") and "hidden" in settings:
        raise DataError(f"{method}: the SASRec is as wide as the text encoder (384 for MiniLM); drop model.hidden")
    if method == "llmesr":
        return build(LLMESRConfig, settings, "model")
    if method.startswith(("elephant", "knowledge")):
        return build(SequentialConfig, settings, "model")
    arch, _, loss = method.partition("-")
    return build(SequentialConfig, {"arch": arch, "loss": loss or "ce", **settings}, "model")


def train(method: str, dataset: RecDataset, split: Split, settings: dict, cache_dir: str | Path,
          tune: BehaviourTuneConfig | None = None, knowledge: KnowledgeConfig | None = None) -> SequentialRecommender:
    """A trained baseline: `settings` for its sequence model (see `model_config`), `tune` for Elephant's
    behaviour tuning, `knowledge` for the knowledge writer."""
    model_cfg = model_config(method, settings)
    tune, knowledge = tune or BehaviourTuneConfig(), knowledge or KnowledgeConfig()
    if method.startswith("elephant"):
        init = {"elephant": "tuned", "elephant-plm": "plm", "elephant-random": "random"}[method]
        return train_elephant(item_texts(dataset), split, init, model_cfg, tune)
    if method.startswith("knowledge"):
        if method == "knowledge-frozen":
            knowledge = replace(knowledge, rounds=0)
        return train_knowledge(item_texts(dataset), split, knowledge, model_cfg, cache_dir)
    if method == "llmesr":
        from semid.text import EncoderConfig, embed_texts

        vectors = embed_texts(item_texts(dataset), EncoderConfig(), cache_dir)
        model = LLMESRRecommender(dataset.num_items, model_cfg, vectors)
    else:
        model = SequentialRecommender(dataset.num_items, model_cfg)
    model.fit(split)
    return model


def load(folder: str | Path) -> SequentialRecommender:
    """A saved baseline of any method."""
    path = Path(folder) / "baseline.json"
    try:
        method = json.loads(path.read_text()).get("method", "")
    except (OSError, ValueError) as err:
        raise DataError(f"{folder}: not a saved baseline ({err})") from None
    if method == "llmesr":
        return LLMESRRecommender.from_pretrained(folder)
    if method.startswith("knowledge"):
        return KnowledgeRecommender.from_pretrained(folder)
    return SequentialRecommender.from_pretrained(folder)
