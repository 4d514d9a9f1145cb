"""Every baseline by name: train one on a dataset's leave-one-out split, or load a saved one.

Settings are `key=value` overrides: plain keys go to the sequence model (SequentialConfig, or LLMESRConfig),
`tune.*` to Elephant's behaviour tuning, `knowledge.*` to the knowledge writer.
"""

from __future__ import annotations

import json
from pathlib import Path

from genrec.config import build
from genrec.data import DataError, RecDataset, Split

from . import METHODS
from .sequential import SequentialConfig, SequentialRecommender


def item_texts(dataset: RecDataset) -> list[str]:
    from semid.text import TextTemplate

    return TextTemplate().texts(dataset)


def train(method: str, dataset: RecDataset, split: Split, settings: dict,
          cache_dir: str | Path) -> SequentialRecommender:
    """A trained baseline; `settings` as parsed from the overrides."""
    if method not in METHODS:
        raise DataError(f"unknown baseline {method!r} (available: {', '.join(METHODS)})")
    settings = dict(settings)
    tune, knowledge = settings.pop("tune", {}), settings.pop("knowledge", {})
    if method.startswith("elephant"):
        from .elephant import BehaviourTuneConfig, train_elephant

        init = {"elephant": "tuned", "elephant-plm": "plm", "elephant-random": "random"}[method]
        if "hidden" in settings:
            raise DataError(f"{method}: the SASRec is as wide as the text encoder (384 for MiniLM); drop hidden=")
        return train_elephant(item_texts(dataset), split, init, build(SequentialConfig, settings, method),
                              build(BehaviourTuneConfig, tune, f"{method} tune"))
    if method == "llmesr":
        from semid.text import EncoderConfig, embed_texts

        from .llmesr import LLMESRConfig, LLMESRRecommender

        vectors = embed_texts(item_texts(dataset), EncoderConfig(), cache_dir)
        model = LLMESRRecommender(dataset.num_items, build(LLMESRConfig, settings, method), vectors)
    elif method.startswith("knowledge"):
        from .knowledge import KnowledgeConfig, train_knowledge

        if method == "knowledge-frozen":
            knowledge = {**knowledge, "rounds": 0}
        return train_knowledge(item_texts(dataset), split, build(KnowledgeConfig, knowledge, f"{method} knowledge"),
                               build(SequentialConfig, settings, method), cache_dir)
    else:
        arch, _, loss = method.partition("-")
        model = SequentialRecommender(dataset.num_items,
                                      build(SequentialConfig, {"arch": arch, "loss": loss or "ce", **settings}, method))
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
        from .llmesr import LLMESRRecommender

        return LLMESRRecommender.from_pretrained(folder)
    if method.startswith("knowledge"):
        from .knowledge import KnowledgeRecommender

        return KnowledgeRecommender.from_pretrained(folder)
    return SequentialRecommender.from_pretrained(folder)
