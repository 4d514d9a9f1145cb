"""`genrec baseline train`: a baseline recommender on the same split, saved for `genrec evaluate`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from baselines import METHODS
from baselines.elephant import BehaviourTuneConfig
from baselines.knowledge import KnowledgeConfig
from baselines.methods import model_config, train

from ..atomic import check_output
from ..data import MAX_HISTORY, RecDataset, leave_one_out


@dataclass
class BaselineTrainConfig:
    # -bce: one sampled negative per position (else full-softmax cross-entropy); elephant: behaviour-tuned
    # MiniLM init (-plm: plain MiniLM, -random: random, same width); knowledge: LM-written knowledge, aligned
    method: Literal[METHODS] | None = None  # the baseline (see docs/baselines.md)
    data: str = ""                 # a dataset folder from `genrec data prepare`
    out: str = ""                  # where the trained baseline is saved
    max_history: int = MAX_HISTORY  # history items a model sees
    cache: str | None = None       # embeddings and LM text cache (default: OUT/cache)
    model: dict = field(default_factory=dict)  # the sequence model's settings, e.g. model.hidden=128 model.epochs=50
    tune: BehaviourTuneConfig = field(default_factory=BehaviourTuneConfig)  # elephant's behaviour tuning
    knowledge: KnowledgeConfig = field(default_factory=KnowledgeConfig)  # the knowledge writer (knowledge*)
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it

    def __post_init__(self):
        if self.method is not None:
            model_config(self.method, self.model)  # every model setting checked before the data is read


def train_command(cfg: BaselineTrainConfig) -> int:
    check_output(cfg.out, inputs=(cfg.data,), overwrite=cfg.overwrite)
    dataset = RecDataset.load(cfg.data)
    started = time.perf_counter()
    model = train(cfg.method, dataset, leave_one_out(dataset, cfg.max_history), cfg.model,
                  cfg.cache or f"{cfg.out}/cache", cfg.tune, cfg.knowledge)
    model.extra["train_seconds"] = round(time.perf_counter() - started, 1)
    model.save_pretrained(cfg.out)
    best = max(h["valid_ndcg@10"] for h in model.history)
    print(f"{cfg.method}: {len(model.history)} epochs in {model.extra['train_seconds']:.0f} s, best validation "
          f"NDCG@10 {best:.4f}; saved to {cfg.out} (evaluate with: genrec evaluate --model {cfg.out} "
          f"--data {cfg.data})")
    return 0
