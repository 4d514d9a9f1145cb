"""Alignment: rows labelled by the frozen recommender, LoRA (or full) training of the LM with trl, connectors
trained beside it, then the alignment metrics on held-out users.

Users are split once with the seed: `train_users` make the training rows (with the item tasks over the whole
catalogue), the next `eval_users` the evaluation rows. A user's history is their training sequence (the last
`max_history` items): the recommender's input when it was trained, so its predictions are its real ones.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import torch
from transformers import ProgressCallback
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from genrec.data import DataError, RecDataset, Split
from genrec.finetune import FiniteLoss, JsonlLog
from genrec.model import BackboneConfig, LoraSettings
from genrec.progress import QuietProgress
from tasks.explainer import VARIANTS, AlignTaskConfig, item_rows, user_rows
from tasks.templates import EXPLAIN

from ..sequential import SequentialRecommender
from .infer import AlignEvalConfig, alignment_metrics
from .model import Explainer


@dataclass
class AlignTrainConfig:
    epochs: float = 1.0
    max_steps: int = -1            # > 0: stop after this many steps
    batch_size: int = 8
    learning_rate: float = 2e-4    # the LM's (LoRA) rate
    connector_lr: float = 1e-3     # the connectors'
    warmup: int = 20
    max_length: int = 512          # tokens a row may have; longer rows are refused, not cut
    logging_steps: int = 10
    seed: int = 0


@dataclass
class RecExplainerConfig:
    variant: Literal[VARIANTS] = "H"  # B (behaviour: titles), I (intention: <user> / <item> vectors), H (both)
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(name="smollm2", lora=LoraSettings()))
    tasks: AlignTaskConfig = field(default_factory=AlignTaskConfig)
    train: AlignTrainConfig = field(default_factory=AlignTrainConfig)
    eval: AlignEvalConfig = field(default_factory=AlignEvalConfig)
    train_users: int = 400         # users whose recommender predictions make training rows (0: all but eval)
    eval_users: int = 100          # held-out users the alignment is measured on


def _scores(recommender: SequentialRecommender, histories: list[np.ndarray], batch: int = 256) -> np.ndarray:
    parts = [recommender.score_items(histories[s : s + batch]) for s in range(0, len(histories), batch)]
    return np.concatenate(parts) if parts else np.zeros((0, recommender.model.num_items), dtype=np.float32)


def alignment_data(dataset: RecDataset, split: Split, recommender: SequentialRecommender,
                   cfg: RecExplainerConfig) -> tuple[datasets.Dataset, list[dict]]:
    """(training rows, evaluation rows), every user-task label from `recommender`'s scores."""
    if recommender.model.num_items != dataset.num_items:
        raise DataError(f"the recommender scores {recommender.model.num_items} items but the dataset has "
                        f"{dataset.num_items}; train it on this dataset")
    rng = np.random.default_rng(cfg.train.seed)
    users = np.array([u for u, seq in enumerate(split.train) if len(seq) >= 1])
    users = users[rng.permutation(len(users))]
    if len(users) <= cfg.eval_users:
        raise DataError(f"{len(users)} users with a training history; eval_users={cfg.eval_users} leaves none to "
                        "train on")
    held_out, rest = users[: cfg.eval_users], users[cfg.eval_users :]
    trained = rest if cfg.train_users <= 0 else rest[: cfg.train_users]
    titles = dataset.titles()

    def rows_for(group: np.ndarray, vary: bool) -> list[dict]:
        histories = [split.train[u] for u in group]
        return user_rows(group, histories, _scores(recommender, histories), titles, cfg.variant, cfg.tasks, rng, vary)

    train_rows = rows_for(trained, True) + item_rows(dataset, cfg.variant, cfg.tasks, rng)
    eval_rows = rows_for(held_out, False)
    if not train_rows:
        raise DataError("no alignment rows: the tasks chosen produce none for this dataset")
    train_rows = [train_rows[i] for i in rng.permutation(len(train_rows))]
    return datasets.Dataset.from_list(train_rows), eval_rows


class AlignCollator:
    """trl's completion-only padding, plus each row's `history` and `items` for the connectors."""

    def __init__(self, pad_token_id: int):
        self.base = DataCollatorForLanguageModeling(pad_token_id=pad_token_id)

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.base([{k: e[k] for k in ("input_ids", "labels") if k in e} for e in examples])
        batch["history"] = [list(e["history"]) for e in examples]
        batch["items"] = [list(e["items"]) for e in examples]
        return batch


class AlignTrainer(SFTTrainer):
    """SFTTrainer whose inputs are the surrogate's embeddings (connectors at `<user>` / `<item>`), with the
    connectors in the optimizer at their own learning rate."""

    def __init__(self, *args, explainer: Explainer, connector_lr: float, **kwargs):
        self.explainer, self.connector_lr = explainer, connector_lr
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if not any(p is q for group in optimizer.param_groups for p in group["params"]
                   for q in self.explainer.connectors.parameters()):
            optimizer.add_param_group({"params": list(self.explainer.connectors.parameters()),
                                       "lr": self.connector_lr, "weight_decay": 0.0})
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        embeds = self.explainer.embed(inputs["input_ids"], inputs["history"], inputs["items"])
        out = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"], labels=inputs["labels"])
        return (out.loss, out) if return_outputs else out.loss


def build_trainer(explainer: Explainer, train_rows: datasets.Dataset, cfg: AlignTrainConfig, out: Path) -> AlignTrainer:
    """trl's trainer over the rows (tokenized by trl, loss on the completions), refusing rows over max_length."""
    args = SFTConfig(output_dir=str(out / "checkpoints"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
                     per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                     warmup_steps=cfg.warmup, lr_scheduler_type="cosine", logging_steps=cfg.logging_steps,
                     save_strategy="no", report_to="none", seed=cfg.seed, data_seed=cfg.seed,
                     completion_only_loss=True, max_length=None, remove_unused_columns=False,
                     dataloader_num_workers=0, disable_tqdm=False, dataloader_pin_memory=torch.cuda.is_available(),
                     bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    trainer = AlignTrainer(model=explainer.lm, args=args,
                           train_dataset=train_rows.select_columns(["prompt", "completion", "history", "items"]),
                           processing_class=explainer.tokenizer,
                           data_collator=AlignCollator(explainer.tokenizer.pad_token_id), explainer=explainer,
                           connector_lr=cfg.connector_lr, callbacks=[JsonlLog(out / "train_log.jsonl"), FiniteLoss()])
    longest = max(len(ids) for ids in trainer.train_dataset["input_ids"])
    if longest > cfg.max_length:
        raise DataError(f"an alignment row has {longest} tokens, more than train.max_length={cfg.max_length}; raise "
                        "it or lower tasks.shown_history")
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(QuietProgress)
    return trainer


def align(dataset: RecDataset, split: Split, recommender: SequentialRecommender, cfg: RecExplainerConfig,
          out: Path) -> tuple[Explainer, dict]:
    """Train the surrogate on the recommender's labels; (surrogate, summary with the alignment metrics)."""
    train_rows, eval_rows = alignment_data(dataset, split, recommender, cfg)
    texts = [*train_rows["prompt"], *train_rows["completion"], *(r["prompt"] for r in eval_rows), EXPLAIN]
    explainer = Explainer.create(cfg.backbone, recommender, cfg.variant, dataset.titles(),
                                 list(dataset.items["item_id"]), texts, cfg.train.seed)
    before = {k: v.clone() for k, v in recommender.model.state_dict().items()}
    trainer = build_trainer(explainer, train_rows, cfg.train, out)
    started = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - started
    explainer.lm = trainer.model
    changed = [k for k, v in recommender.model.state_dict().items() if not torch.equal(v, before[k])]
    if changed:
        raise RuntimeError(f"the recommender changed in training ({changed[0]}); it must stay frozen")
    started = time.perf_counter()
    metrics = alignment_metrics(explainer, eval_rows, cfg.eval)
    tasks, counts = np.unique(train_rows["task"], return_counts=True)
    summary = {"variant": cfg.variant, "train_rows": train_rows.num_rows, "eval_users": cfg.eval_users,
               "steps": trainer.state.global_step, "train_loss": result.training_loss,
               "train_seconds": round(train_seconds, 1), "eval_seconds": round(time.perf_counter() - started, 1),
               "alignment": metrics, "tasks": {str(t): int(c) for t, c in zip(tasks, counts)}}
    explainer.info.update({"summary": summary, "tasks": asdict(cfg.tasks)})
    return explainer, summary
