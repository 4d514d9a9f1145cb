"""Training the parallel head (`finetune.head: parallel`) in SASRec's regime, with the transformers Trainer.

The rows are item sequences, not prompts: each user's training items cut into windows of `max_history` + 1
(tasks.rows.windows), with a loss at every position (each training item after a user's first is a target
once). The Trainer brings what the SFT path has: accelerate launch, bf16, checkpoints and resume, trackers,
warmup and cosine decay, weight decay. Model selection is validation NDCG@10 of the exact full-catalogue
ranking, with early stopping; the ranking is cheap, so `eval_users` can cover the whole validation split.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from transformers import EarlyStoppingCallback, ProgressCallback, Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from tasks.rows import windows

from .data import DataError, EvalSet, leave_one_out
from .evaluate import sample_users
from .progress import QuietProgress, report_ranking

log = logging.getLogger("genrec.finetune")


class ItemWindows(Dataset):
    """Training windows of item ids (history then target), one per row."""

    def __init__(self, train: list[np.ndarray], max_history: int):
        self.rows = [np.append(history, target).astype(np.int64) for _, history, target in windows(train, max_history)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.rows[index]


def collate_windows(rows: list[np.ndarray]) -> dict:
    """Right-padded inputs (all but the last item) and targets (all but the first), -1 where padded."""
    width = max(len(r) for r in rows) - 1
    items = torch.full((len(rows), width), -1, dtype=torch.long)
    targets = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, row in enumerate(rows):
        items[i, : len(row) - 1] = torch.from_numpy(row[:-1])
        targets[i, : len(row) - 1] = torch.from_numpy(row[1:])
    return {"items": items, "targets": targets}


class ParallelTrainer(Trainer):
    """Trainer whose evaluation is the exact full-catalogue ranking of validation users (Recall / NDCG)."""

    def __init__(self, *args, genrec, ranking: EvalSet, **kwargs):
        super().__init__(*args, **kwargs)
        self.genrec, self.ranking = genrec, ranking

    def _get_train_sampler(self, train_dataset=None):
        """With `group_by_length`, random batches of windows of similar length (transformers'
        LengthGroupedSampler): padding to each batch's longest window then costs little, where random batches
        pad most rows to `max_history`."""
        if self.args.train_sampling_strategy != "group_by_length":
            return super()._get_train_sampler(train_dataset)
        rows = train_dataset if train_dataset is not None else self.train_dataset
        return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                    lengths=[len(row) for row in rows.rows])

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Checkpoints hold the trained weights only (all of a scratch model; LoRA, code rows and head of a
        pretrained one), not a frozen base model's copy; loading them back is non-strict in the Trainer."""
        trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
        state = {k: v.contiguous() for k, v in self.model.state_dict().items() if k in trained}
        super()._save(output_dir, state_dict=state)

    def _issue_warnings_after_load(self, load_result) -> None:
        """A checkpoint lacks the frozen weights by design (`_save`); it must hold every trained one."""
        trained = {name for name, p in self.model.named_parameters() if p.requires_grad}
        missing = sorted(set(load_result.missing_keys) & trained)
        if missing or load_result.unexpected_keys:
            raise DataError(f"the checkpoint does not fit the model: missing {missing[:3]}, unexpected "
                            f"{list(load_result.unexpected_keys)[:3]}; finetune again without --resume")

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        top, _ = self.genrec.recommend_items(self.ranking.histories, k=20)
        return report_ranking(self, top, self.ranking.targets, metric_key_prefix)


def train_parallel(cfg, genrec, dataset, max_history: int, callbacks: list, checkpoint: Path | None = None
                   ) -> tuple[Trainer, object]:
    """Train `genrec`'s parallel head and backbone (a FinetuneConfig `cfg`) on the split's training part, from
    `checkpoint` when resuming; returns the trainer and its train() result, the best checkpoint by validation
    NDCG@10 loaded back."""
    split = leave_one_out(dataset, max_history)
    rows = ItemWindows(split.train, max_history)
    valid = sample_users(split.valid, cfg.eval_users, cfg.seed)
    genrec.info.update(max_history=max_history, parallel_loss=cfg.parallel_loss)
    log.info("parallel head: %d training windows, %d validation users", len(rows), len(valid))
    args = TrainingArguments(
        output_dir=str(Path(cfg.out) / "checkpoints"), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps, eval_strategy="steps",
        eval_steps=cfg.eval_steps, save_strategy="steps", save_steps=cfg.eval_steps, save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="ndcg@10", greater_is_better=True,
        report_to=cfg.report_to, run_name=cfg.run_name or Path(cfg.out).name,
        dataloader_pin_memory=torch.cuda.is_available(), seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
    )
    if cfg.gradient_checkpointing:  # the trainer's switch needs a transformers model; the net wraps one
        genrec.model.gradient_checkpointing_enable()
    trainer = ParallelTrainer(model=genrec.net(), args=args, train_dataset=rows, eval_dataset=rows.rows[:1],
                              data_collator=collate_windows, genrec=genrec, ranking=valid,
                              callbacks=[EarlyStoppingCallback(cfg.patience), *callbacks])
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(QuietProgress)
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return trainer, result
