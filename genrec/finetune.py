"""Step 2: finetune a causal LM on the multi-task SFT data with trl, selecting the model on ranking quality.

trl's `SFTTrainer` trains on prompt/completion rows with the loss on the completion only. Evaluation is not
the validation loss (LC-Rec selects on loss) but what we care about: NDCG@10 of the constrained beam search
on validation users; the best checkpoint is kept and training stops when it stops improving. Multi-process
training comes from accelerate (`accelerate launch -m genrec finetune ...`), resuming from trl checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import datasets
import numpy as np
import torch
from torch import nn
from transformers import EarlyStoppingCallback, ProgressCallback, TrainerCallback
from trl import SFTConfig, SFTTrainer

from semid.tokenizer import SemanticIdTokenizer
from tasks.rows import as_chat

from .atomic import check_output, mark
from .data import MAX_HISTORY, DataError, RecDataset
from .model import BackboneConfig, GenRecModel, Head
from .parallel import LOSSES
from .progress import QuietProgress, report_ranking
from .train_parallel import train_parallel

log = logging.getLogger("genrec.finetune")
MAIN_PROCESS = int(os.environ.get("RANK", "0")) == 0  # torchrun / accelerate launch set RANK per process
STARTED = "started.json"  # the configuration key of the checkpoints under OUT/checkpoints
TRACKERS = ("none", "tensorboard", "wandb", "trackio")


@dataclass
class FinetuneConfig:
    data: str = ""                 # dataset folder (genrec data prepare)
    semid: str = ""                # semantic IDs folder (genrec codebook build)
    sft: str = ""                  # SFT data folder (genrec tasks build)
    out: str = ""                  # where the finetuned model goes
    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(scratch={}))
    epochs: float = 3.0            # passes over the training rows (max_steps wins when set)
    max_steps: int = -1            # stop after this many optimiser steps (-1: by epochs)
    learning_rate: float = 1e-3
    batch_size: int = 64           # rows per device and step
    grad_accum: int = 1            # gradient accumulation steps
    max_length: int = 256          # tokens per row; longer rows are cut
    warmup: float = 0.05           # fraction of steps
    weight_decay: float = 0.0
    eval_steps: int = 500          # steps between validation rankings (and checkpoints)
    eval_users: int = 500          # validation users ranked at each evaluation
    eval_beams: int = 20           # beam width of the validation ranking
    patience: int = 4              # evaluations without a better NDCG@10 before stopping
    logging_steps: int = 50
    seed: int = 0
    bf16: bool = False             # bfloat16 mixed precision (GPUs)
    gradient_checkpointing: bool = False
    history_head: Literal["codes", "full"] = "codes"  # history-loss targets scored over the code tokens or all
    head: Head = "autoregressive"  # LC-Rec's next-code generation, or RPG's parallel semantic-ID head
    item_inputs: Literal["mean", "sum"] = "mean"  # parallel head: an input item is the mean or sum of its code rows
    parallel_loss: Literal["codes", "items"] = "codes"  # parallel head: each code's cross-entropy (RPG) or the item's
    group_by_length: bool = False  # parallel head: batches of windows of similar length (less padding, faster)
    report_to: str | list[str] = "none"  # experiment tracking: none, tensorboard, wandb, trackio (or a list)
    run_name: str | None = None    # the run's name in the tracker (default: the output folder's name)
    resume: bool = False           # continue from the newest complete checkpoint of this configuration
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it

    def __post_init__(self):
        if isinstance(self.backbone, dict):
            self.backbone = BackboneConfig(**self.backbone)
        if self.parallel_loss not in LOSSES:
            raise DataError(f"finetune.parallel_loss must be one of {', '.join(LOSSES)}, not {self.parallel_loss!r}")
        if self.group_by_length and self.head != "parallel":
            raise DataError("finetune.group_by_length applies to head: parallel (item windows), not to SFT rows")
        if self.history_head not in ("codes", "full"):
            raise DataError(f"finetune.history_head must be 'codes' or 'full', not {self.history_head!r}")
        trackers = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to)
        unknown = sorted(set(trackers) - set(TRACKERS))
        if unknown:
            raise DataError(f"finetune.report_to: unknown {', '.join(unknown)} (choose from {', '.join(TRACKERS)})")
        for name in ("learning_rate", "batch_size", "grad_accum", "eval_steps", "eval_users", "eval_beams",
                     "max_length", "logging_steps"):
            if getattr(self, name) <= 0:
                raise DataError(f"finetune.{name} must be positive, not {getattr(self, name)}")
        if self.max_steps == 0 or self.max_steps < -1 or (self.max_steps == -1 and self.epochs <= 0):
            raise DataError(f"finetune: max_steps {self.max_steps} with epochs {self.epochs} trains nothing")
        if not 0 <= self.warmup < 1 or self.weight_decay < 0:
            raise DataError("finetune.warmup must be in [0, 1) and finetune.weight_decay >= 0")


def check_inputs(cfg: FinetuneConfig) -> tuple[RecDataset, SemanticIdTokenizer, datasets.DatasetDict, dict]:
    """The dataset, semantic IDs and SFT data, checked to belong together; plus the SFT data's tasks.json."""
    for name in ("data", "semid", "sft", "out"):
        if not getattr(cfg, name):
            raise DataError(f"finetune needs `{name}` (a folder)")
    dataset, semid = RecDataset.load(cfg.data), SemanticIdTokenizer.from_pretrained(cfg.semid)
    if semid.item_ids != list(dataset.items["item_id"]):
        raise DataError(f"{cfg.semid} was not built from {cfg.data}: its items differ; rebuild the codebook")
    info_path = Path(cfg.sft) / "tasks.json"
    if not info_path.is_file():
        raise DataError(f"{cfg.sft}: no tasks.json; build the SFT data with `genrec tasks build`")
    info = json.loads(info_path.read_text())
    recorded = info.get("semid_fingerprint")
    if recorded != semid.fingerprint():
        raise DataError(f"{cfg.sft} was built with other semantic IDs (fingerprint {recorded}) than {cfg.semid} "
                        f"({semid.fingerprint()}); rebuild the SFT data")
    return dataset, semid, datasets.load_from_disk(cfg.sft), info


def completion_loss(model, inputs: dict, num_items_in_batch=None,
                    history_head: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss on the completions with the output layer run on the completion positions only.

    Rows are moved to left padding, so every completion (a row's last run of labelled tokens; prompts always
    end with unlabelled words) ends at or near the last position and the full-vocabulary output layer can
    skip the prompt (`logits_to_keep`), which is most of a step's cost for a small model with a large word
    vocabulary. Positions follow the real tokens, so the loss is the one the model computes on the right-padded
    rows.

    Rows with the history loss are labelled from their second history item on. With `history_head` (the code
    tokens' ids, sorted) those history targets are scored over the code tokens only, a softmax over ~1k rows
    instead of the whole vocabulary; the completion keeps the full vocabulary that decoding normalises over.
    """
    mask, labels = inputs["attention_mask"], inputs["labels"]
    order = torch.sort(mask, dim=1, stable=True).indices  # padding first, then the row in its own order
    ids, mask, labels = (t.gather(1, order) for t in (inputs["input_ids"], mask, labels))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    count = num_items_in_batch if num_items_in_batch is not None else (labels != -100).sum().clamp(min=1)
    width, unlabelled = labels.shape[1], labels == -100
    index = torch.arange(width, device=labels.device).expand_as(labels)
    last_labelled = torch.where(unlabelled, -1, index).amax(1, keepdim=True)
    before = torch.where(unlabelled & (index < last_labelled), index, -1).amax(1, keepdim=True)
    in_completion = (index > before) & (index <= last_labelled)
    span = int(width - 1 - before.min().clamp(min=0))  # from the earliest predictable completion token to the end
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=span + 1,
                output_hidden_states=True)  # through the model's own forward, so a DDP wrapper syncs gradients
    hidden, logits = out.hidden_states[-1], out.logits  # the last hidden states are after the final norm
    completion = labels.masked_fill(~in_completion, -100)[:, width - span :]  # not another row's history labels
    loss = nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), completion.reshape(-1),
                                       ignore_index=-100, reduction="sum")
    history = ~unlabelled[:, 1:] & ~in_completion[:, 1:]  # labels of the next position, before the completion
    if history.any():
        states, targets = hidden[:, :-1][history], labels[:, 1:][history]
        head = getattr(model, "module", model).get_output_embeddings()  # under DDP, the wrapped model's
        if history_head is None:
            loss = loss + nn.functional.cross_entropy(head(states).float(), targets, reduction="sum")
        else:
            code_logits = states @ head.weight[history_head].T  # peft's `.weight` includes its trained code rows
            column = torch.searchsorted(history_head, targets).clamp(max=len(history_head) - 1)
            if not torch.equal(history_head[column], targets):
                raise ValueError("a history target is not a code token; history labels must be code tokens only")
            loss = loss + nn.functional.cross_entropy(code_logits.float(), column, reduction="sum")
    return loss / count, logits


def label_history_codes(input_ids: list[int], labels: list[int], code_ids: set[int], skip: int) -> list[int]:
    """`labels` with every code token of the prompt labelled too, except the first `skip` (the first history
    item, which has nothing before it): each history item becomes a target predicted from the items before it."""
    out, seen = list(labels), 0
    for i, (token, label) in enumerate(zip(input_ids, labels)):
        if label != -100:  # the completion starts here and is labelled already
            break
        if token in code_ids:
            seen += 1
            if seen > skip:
                out[i] = token
    return out


class RankingSFTTrainer(SFTTrainer):
    """SFTTrainer whose evaluation ranks validation users by constrained beam search (Recall / NDCG)."""

    def __init__(self, *args, genrec: GenRecModel, ranking_rows: datasets.Dataset, beams: int,
                 history_head: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.genrec, self.ranking_rows, self.beams, self.history_head = genrec, ranking_rows, beams, history_head

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Cross-entropy on the completion tokens (labels are -100 elsewhere), through the model's own head.

        trl's fused LM head multiplies by `lm_head.weight` directly, which skips peft's trainable code-token
        rows in the head: the code tokens' output rows would never train (LETTER's issue #12).
        """
        head = None if self.history_head is None else self.history_head.to(inputs["labels"].device)
        loss, logits = completion_loss(model, inputs, num_items_in_batch, head)
        return (loss, {"logits": logits}) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        self.genrec.model = self.model
        top, _ = self.genrec.recommend_prompts(list(self.ranking_rows["prompt"]), k=20, beams=max(self.beams, 20))
        return report_ranking(self, top, np.asarray(list(self.ranking_rows["target_item"])), metric_key_prefix)


class JsonlLog(TrainerCallback):
    """Every logged dict as one JSON line (loss, learning rate, validation metrics)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def plot_curves(log_path: Path, out: Path, best_step: int | None = None) -> None:
    """Training loss and validation NDCG@10 by step, with the checkpoint that was kept starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    loss = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    ndcg: dict[int, float] = {}
    for row in rows:  # the first evaluation at a step: a later one is the kept model's re-evaluation
        if "eval_ndcg@10" in row:
            ndcg.setdefault(row["step"], row["eval_ndcg@10"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, points, title in ((axes[0], loss, "training loss"), (axes[1], list(ndcg.items()), "validation NDCG@10")):
        if points:
            ax.plot(*zip(*points), marker="o" if title.startswith("val") else None)
        ax.set_title(title)
        ax.set_xlabel("step")
    if best_step in ndcg:
        axes[1].plot(best_step, ndcg[best_step], marker="*", markersize=16, linestyle="", label="kept")
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


RESUME_MAY_CHANGE = ("resume", "overwrite", "max_steps", "epochs")  # a resume may extend the training


def config_key(cfg: FinetuneConfig) -> str:
    """What a checkpoint's configuration must match for a resume: every setting but those a resume may change."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in RESUME_MAY_CHANGE}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resumable_checkpoint(cfg: FinetuneConfig) -> Path | None:
    """The newest complete checkpoint under OUT/checkpoints written with this configuration, or None.

    A checkpoint without its trainer state (a kill during its write) is removed with a warning; checkpoints of
    another configuration are never resumed."""
    out = Path(cfg.out)
    started = out / STARTED
    if not started.is_file() or json.loads(started.read_text()).get("key") != config_key(cfg):
        return None
    complete = []
    for folder in sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
        if (folder / "trainer_state.json").is_file():
            complete.append(folder)
        else:
            log.warning("%s is incomplete (no trainer_state.json, interrupted while saving); removed", folder)
            shutil.rmtree(folder)
    return complete[-1] if complete else None


class FiniteLoss(TrainerCallback):
    """Stop at the first logged loss that is NaN or infinite: a diverged model is never saved."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise DataError(f"training diverged: the loss is {loss} at step {state.global_step}; lower "
                            "finetune.learning_rate (the model was not saved)")


def finetune(cfg: FinetuneConfig) -> dict:
    """Train, keep the best checkpoint by validation NDCG@10, save a GenRecModel to `cfg.out`."""
    dataset, semid, sft, sft_info = check_inputs(cfg)
    out = Path(cfg.out)
    checkpoints = out / "checkpoints"
    checkpoint = resumable_checkpoint(cfg) if cfg.resume else None
    if cfg.resume:
        if checkpoint is None:
            raise DataError(f"--resume: no complete checkpoint of this configuration under {checkpoints}")
        log.info("resuming from %s", checkpoint)
    elif MAIN_PROCESS:  # under accelerate launch, one process checks and prepares the folder
        check_output(out, inputs=(cfg.data, cfg.semid, cfg.sft), overwrite=cfg.overwrite)
        if checkpoints.is_dir():  # an earlier run's, in a folder genrec made: never resumed by mistake
            shutil.rmtree(checkpoints)
    if MAIN_PROCESS:
        mark(out)
        (out / STARTED).write_text(json.dumps({"key": config_key(cfg)}))
    if cfg.head == "parallel":
        return _finetune_parallel(cfg, dataset, semid, sft_info, checkpoint)
    history_loss = "history_loss" in sft["train"].column_names and any(sft["train"]["history_loss"])
    train = sft["train"].select_columns(["prompt", "completion", *(["history_loss"] if history_loss else [])])
    texts = [t for t in list(train["prompt"]) + list(train["completion"]) if isinstance(t, str)]
    genrec = GenRecModel.create(cfg.backbone, semid, texts=texts, seed=cfg.seed, prompts=sft_info.get("eval_prompts"))
    genrec.titles = dict(zip(dataset.items["item_id"], dataset.titles()))
    if cfg.backbone.chat and train.num_rows and isinstance(train[0]["prompt"], str):
        train = train.map(as_chat)
    valid = sft["valid"]
    if valid.num_rows > cfg.eval_users:
        valid = valid.shuffle(seed=cfg.seed).select(range(cfg.eval_users))
    args = SFTConfig(
        output_dir=str(checkpoints), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type="cosine", warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps, eval_strategy="steps",
        eval_steps=cfg.eval_steps, save_strategy="steps", save_steps=cfg.eval_steps, save_total_limit=2,
        load_best_model_at_end=True, metric_for_best_model="ndcg@10", greater_is_better=True,
        report_to=cfg.report_to, run_name=cfg.run_name or out.name, dataloader_pin_memory=torch.cuda.is_available(),
        seed=cfg.seed, data_seed=cfg.seed, bf16=cfg.bf16, activation_checkpointing=cfg.gradient_checkpointing,
        completion_only_loss=True, max_length=cfg.max_length, dataloader_num_workers=0, disable_tqdm=False,
    )
    log_path = _fresh_log(cfg)
    code_ids = sorted(genrec.tokenizer.convert_tokens_to_ids(semid.all_tokens()))
    history_head = torch.tensor(code_ids) if history_loss and cfg.history_head == "codes" else None
    trainer = RankingSFTTrainer(
        model=genrec.model, args=args, train_dataset=train, eval_dataset=valid.select(range(1)),
        processing_class=genrec.tokenizer, genrec=genrec, ranking_rows=valid, beams=cfg.eval_beams,
        history_head=history_head,
        callbacks=[EarlyStoppingCallback(cfg.patience), JsonlLog(log_path), FiniteLoss()],
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(QuietProgress)
    dropped = train.num_rows - trainer.train_dataset.num_rows
    if dropped:  # trl cuts rows at max_length and drops those left without a completion token
        log.warning("%d of %d training rows have prompts of max_length=%d tokens or more and were dropped; raise "
                    "finetune.max_length or lower tasks.max_history to keep them", dropped, train.num_rows,
                    cfg.max_length)
    if history_loss:
        code_set = set(code_ids)
        trainer.train_dataset = trainer.train_dataset.map(
            lambda row: {"labels": label_history_codes(row["input_ids"], row["labels"], code_set, semid.num_levels)
                         if row["history_loss"] else row["labels"]}, desc="Labelling history items")
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    genrec.model = trainer.model
    return _save(cfg, genrec, dataset, trainer, result, log_path)


def _fresh_log(cfg: FinetuneConfig) -> Path:
    """OUT/train_log.jsonl, emptied unless resuming."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.jsonl"
    if not cfg.resume and log_path.exists():
        log_path.unlink()
    return log_path


def _finetune_parallel(cfg: FinetuneConfig, dataset: RecDataset, semid: SemanticIdTokenizer, sft_info: dict,
                       checkpoint: Path | None) -> dict:
    """The parallel head: item sequences from the dataset's split (the SFT rows are not used; the SFT data's
    `max_history` is)."""
    genrec = GenRecModel.create(cfg.backbone, semid, seed=cfg.seed, prompts=sft_info.get("eval_prompts"),
                                head="parallel", item_inputs=cfg.item_inputs)
    genrec.titles = dict(zip(dataset.items["item_id"], dataset.titles()))
    log_path = _fresh_log(cfg)
    max_history = sft_info.get("config", {}).get("max_history", MAX_HISTORY)
    trainer, result = train_parallel(cfg, genrec, dataset, max_history, [JsonlLog(log_path), FiniteLoss()],
                                     checkpoint)
    return _save(cfg, genrec, dataset, trainer, result, log_path)


def _save(cfg: FinetuneConfig, genrec: GenRecModel, dataset: RecDataset, trainer, result, log_path: Path) -> dict:
    """Plot the curves, re-evaluate the kept model, save it with its summary (the main process only)."""
    out = Path(cfg.out)
    if trainer.is_world_process_zero():  # before the best model's re-evaluation joins the log
        kept = trainer.state.best_model_checkpoint
        plot_curves(log_path, out / "train_curves.png", int(kept.rsplit("-", 1)[1]) if kept else None)
    best = trainer.evaluate()
    summary = {"train_seconds": result.metrics.get("train_runtime"), "steps": trainer.state.global_step,
               "best_checkpoint": trainer.state.best_model_checkpoint, **best}
    if trainer.is_world_process_zero():
        genrec.info.update({"finetune": asdict(cfg), "validation": best, "dataset": dataset.name})
        genrec.save_pretrained(out)
        (out / "finetune_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
