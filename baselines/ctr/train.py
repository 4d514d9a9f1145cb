"""Train any CTR method: encode the rows, pretrain where the method aligns with a language model (training rows
only), finetune with model selection on validation AUC, and save / load the result (`CtrModel`).

`pretrained` reuses the pretraining an earlier run saved (`OUT/pretrained`), so FLIP-ID and joint FLIP, or
ClickPrompt and ClickPrompt-CTR, can share one pretraining as in the papers.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from genrec.atomic import mark
from genrec.config import build
from genrec.errors import DataError, describe
from genrec.evaluate import ctr_metrics
from genrec.sources import MINILM

from . import CTR_METHODS
from .clickprompt import ClickPromptConfig, ClickPromptJoint, ClickPromptPretrainer
from .data import FIELDS, CtrTable, FeatureVocab, check_fields
from .flip import FlipConfig, FlipJoint, FlipPretrainer
from .models import IdModel, IdModelConfig
from .text import FieldTokens, TextEncoder

TEXT_METHODS = ("flip", "flip-id", "clickprompt", "clickprompt-ctr")  # pretrained with a language model
TEXT_AT_INFERENCE = ("flip", "clickprompt")


@dataclass
class PretrainConfig:
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3          # ID model, heads, prompt generator
    text_lr: float = 5e-5     # the language model's own weights
    rows: int | None = None   # a seeded sample of the training rows (null: all of them)
    seed: int = 0


@dataclass
class FinetuneConfig:
    epochs: int = 20          # the most epochs; early stopping on validation AUC ends most runs sooner
    batch_size: int = 256
    lr: float = 1e-3
    text_lr: float = 5e-5
    weight_decay: float = 0.0
    patience: int = 2         # validation rounds without a better AUC before stopping
    evals_per_epoch: int = 1  # validation rounds per epoch; the state with the best AUC is kept
    rows: int | None = None   # a seeded sample of the training rows (null: all of them)
    seed: int = 0


@dataclass
class CtrConfig:
    method: Literal[CTR_METHODS] = "dcnv2"  # deepfm, dcnv2, flip, flip-id, clickprompt, clickprompt-ctr
    fields: tuple[str, ...] = FIELDS  # the fields of a row, a subset of the default, kept in its order
    id_model: IdModelConfig = field(default_factory=IdModelConfig)  # deepfm / dcnv2 set arch themselves
    text_encoder: str = MINILM        # a BERT-style encoder (flip*, clickprompt*): hub name or folder
    max_length: int = 64              # tokens of a row's text
    flip: FlipConfig = field(default_factory=FlipConfig)
    clickprompt: ClickPromptConfig = field(default_factory=ClickPromptConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pretrained: str | None = None     # reuse the pretraining of an earlier run of the same family (its OUT)

    def __post_init__(self):
        if self.method not in CTR_METHODS:
            raise DataError(f"unknown CTR method {self.method!r} (available: {', '.join(CTR_METHODS)})")
        self.fields = check_fields(self.fields)
        if self.method in ("deepfm", "dcnv2"):
            self.id_model.arch = self.method
            if self.pretrained:
                raise DataError(f"{self.method} has no pretraining; drop pretrained")

    @property
    def family(self) -> str | None:
        return self.method.split("-")[0] if self.method in TEXT_METHODS else None


class IdOnly(nn.Module):
    """The ID model alone (DeepFM, DCNv2, FLIP-ID, ClickPrompt-CTR)."""

    def __init__(self, id_model: IdModel):
        super().__init__()
        self.id_model = id_model

    def predict(self, batch: dict) -> torch.Tensor:
        return self.id_model.logit(batch["features"])

    def loss(self, batch: dict) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(self.predict(batch), batch["labels"])


class Rows:
    """One split's rows as tensors: features (N, F) indices, labels, and for text methods token ids / owners."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, tokens: tuple | None = None, pad: int = 0):
        self.features, self.labels = torch.as_tensor(features), torch.as_tensor(labels)
        self.ids, self.owner = (torch.as_tensor(t) for t in tokens) if tokens else (None, None)
        self.pad = pad

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, count: int | None, generator: torch.Generator) -> Rows:
        """`count` rows drawn without replacement (all of them when count is None or not smaller)."""
        if count is None or count >= len(self):
            return self
        keep = torch.randperm(len(self), generator=generator)[:count]
        part = copy.copy(self)
        part.features, part.labels = self.features[keep], self.labels[keep]
        if self.ids is not None:
            part.ids, part.owner = self.ids[keep], self.owner[keep]
        return part

    def batches(self, size: int, generator: torch.Generator | None = None):
        order = torch.randperm(len(self), generator=generator) if generator is not None else torch.arange(len(self))
        for start in range(0, len(self), size):
            pick = order[start : start + size]
            batch = {"features": self.features[pick], "labels": self.labels[pick]}
            if self.ids is not None:
                ids = self.ids[pick]
                mask = ids != self.pad
                width = int(mask.sum(1).max())
                batch.update(ids=ids[:, :width], mask=mask[:, :width].long(), owner=self.owner[pick][:, :width])
            yield batch


def encode(table: CtrTable, vocab: FeatureVocab, tokens: FieldTokens | None) -> Rows:
    if tokens is None:
        return Rows(vocab.encode(table), table.labels)
    return Rows(vocab.encode(table), table.labels, tokens.encode(table.values), tokens.tokenizer.pad_token_id)


def _optimizer(net: nn.Module, lr: float, text_lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    text = {id(p) for name, p in net.named_parameters() if ".bert." in f".{name}"}
    groups = [{"params": [p for p in net.parameters() if id(p) not in text], "lr": lr},
              {"params": [p for p in net.parameters() if id(p) in text], "lr": text_lr}]
    return torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=weight_decay)


def pretrain(pretrainer: nn.Module, rows: Rows, cfg: PretrainConfig, desc: str) -> list[dict]:
    """The method's pretraining losses summed, on `rows` (the training split) only."""
    generator = torch.Generator().manual_seed(cfg.seed)
    rows = rows.sample(cfg.rows, generator)
    optimizer = _optimizer(pretrainer, cfg.lr, cfg.text_lr)
    pretrainer.train()
    history = []
    steps = cfg.epochs * -(-len(rows) // cfg.batch_size)
    with tqdm(total=steps, desc=desc, unit="step") as bar:
        for epoch in range(cfg.epochs):
            for batch in rows.batches(cfg.batch_size, generator):
                losses = pretrainer.losses(batch, generator)
                loss = sum(losses.values())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.update()
                bar.set_postfix({k: f"{v.item():.3f}" for k, v in losses.items()}, refresh=False)
            history.append({"epoch": epoch + 1, **{k: round(v.item(), 4) for k, v in losses.items()}})
    pretrainer.eval()
    return history


@torch.no_grad()
def predict(net: nn.Module, rows: Rows, batch_size: int = 512) -> np.ndarray:
    net.eval()
    return np.concatenate([torch.sigmoid(net.predict(b)).numpy() for b in rows.batches(batch_size)])


def finetune(net: nn.Module, train: Rows, valid: Rows, cfg: FinetuneConfig, desc: str) -> list[dict]:
    """Train on `train`; after every validation round keep the state with the best validation AUC (the only
    thing model selection looks at) and stop after `patience` rounds without a better one."""
    generator = torch.Generator().manual_seed(cfg.seed)
    train = train.sample(cfg.rows, generator)
    optimizer = _optimizer(net, cfg.lr, cfg.text_lr, cfg.weight_decay)
    per_epoch = -(-len(train) // cfg.batch_size)
    checkpoints = {round(per_epoch * (i + 1) / cfg.evals_per_epoch) for i in range(cfg.evals_per_epoch)}
    history, best, best_state, waited = [], -1.0, None, 0
    with tqdm(total=cfg.epochs * per_epoch, desc=desc, unit="step") as bar:
        for epoch in range(cfg.epochs):
            net.train()
            total = 0.0
            for step, batch in enumerate(train.batches(cfg.batch_size, generator), start=1):
                loss = net.loss(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
                bar.update()
                bar.set_postfix(loss=f"{total / step:.4f}", best_auc=f"{best:.4f}", refresh=False)
                if step not in checkpoints:
                    continue
                metrics = ctr_metrics(valid.labels.numpy(), predict(net, valid))
                history.append({"epoch": round(epoch + step / per_epoch, 3), "train_loss": round(total / step, 5),
                                "valid_auc": round(metrics["auc"], 5), "valid_logloss": round(metrics["logloss"], 5)})
                net.train()
                if metrics["auc"] > best:
                    best, best_state, waited = metrics["auc"], copy.deepcopy(net.state_dict()), 0
                else:
                    waited += 1
                if waited >= cfg.patience:
                    break
            if waited >= cfg.patience:
                break
    net.load_state_dict(best_state)
    net.eval()
    return history


class CtrModel:
    """A trained CTR method: `predict(table)` -> click probabilities; save_pretrained / from_pretrained."""

    def __init__(self, cfg: CtrConfig, vocab: FeatureVocab, text: tuple | None = None):
        self.cfg, self.vocab = cfg, vocab
        self.text, self.tokenizer = text or (None, None)
        self.id_model = IdModel(cfg.id_model, vocab.size, len(vocab.fields))
        self.pretrainer = None  # built where there is a text model: training, or a joint model loaded back
        if cfg.family == "flip" and self.text is not None:
            self.pretrainer = FlipPretrainer(self.id_model, self.text, cfg.flip, vocab.field_of(),
                                             self.tokenizer.mask_token_id)
        elif cfg.family == "clickprompt" and self.text is not None:
            self.pretrainer = ClickPromptPretrainer(self.id_model, self.text, cfg.clickprompt, self.tokenizer)
        if cfg.method == "flip":
            self.net = FlipJoint(self.id_model, self.text)
        elif cfg.method == "clickprompt":
            self.net = ClickPromptJoint(self.id_model, self.text, self.pretrainer.generator, cfg.clickprompt.alpha)
        else:
            self.net = IdOnly(self.id_model)
        self.history: dict[str, list] = {}
        self.extra: dict = {}

    def tokens(self) -> FieldTokens | None:
        return FieldTokens(self.tokenizer, self.vocab.fields, self.cfg.max_length) if self.tokenizer else None

    def rows(self, table: CtrTable, with_text: bool | None = None) -> Rows:
        with_text = self.cfg.method in TEXT_AT_INFERENCE if with_text is None else with_text
        return encode(table, self.vocab, self.tokens() if with_text else None)

    def predict(self, table: CtrTable) -> np.ndarray:
        return predict(self.net, self.rows(table))

    # ---- disk -----------------------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> None:
        folder = mark(folder)
        save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, folder / "model.safetensors")
        if self.cfg.method in TEXT_AT_INFERENCE:
            self.text.save(folder / "text", self.tokenizer)
        info = {"method": self.cfg.method, "config": asdict(self.cfg), "vocab": self.vocab.to_dict(),
                "history": self.history, **self.extra}
        (folder / "ctr.json").write_text(json.dumps(info, indent=2))

    def save_pretraining(self, folder: Path) -> None:
        """What `pretrained=` reuses: the pretraining network's weights, its text model and what must match."""
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.pretrainer.state_dict().items()}, folder / "model.safetensors")
        self.text.save(folder / "text", self.tokenizer)
        (folder / "pretrain.json").write_text(json.dumps(self._pretraining_key(), indent=2))

    def _pretraining_key(self) -> dict:
        cfg = self.cfg
        return {"family": cfg.family, "fields": list(cfg.fields), "id_model": asdict(cfg.id_model),
                "max_length": cfg.max_length, "method_settings": asdict(getattr(cfg, cfg.family)),
                "pretrain": asdict(cfg.pretrain), "vocab": self.vocab.to_dict()}

    def load_pretraining(self, folder: str | Path) -> None:
        folder = Path(folder) / "pretrained"
        try:
            key = json.loads((folder / "pretrain.json").read_text())
            state = load_file(folder / "model.safetensors")
        except (OSError, ValueError) as err:
            raise DataError(f"{folder}: no saved pretraining to reuse ({describe(err)}); run flip or clickprompt "
                            "with that --out first") from None
        mine = self._pretraining_key()
        differ = [k for k in mine if k not in ("pretrain",) and key.get(k) != mine[k]]
        if differ:
            raise DataError(f"{folder}: its pretraining differs from this run in {', '.join(differ)}; reuse it only "
                            "with the same family, data, fields and model settings")
        self.pretrainer.load_state_dict(state)
        self.extra["pretrained_from"] = str(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> CtrModel:
        folder = Path(folder)
        try:
            info = json.loads((folder / "ctr.json").read_text())
            cfg = build(CtrConfig, info["config"], "ctr")
            text = TextEncoder.from_folder(folder / "text") if cfg.method in TEXT_AT_INFERENCE else None
            model = cls(cfg, FeatureVocab.from_dict(info["vocab"]), text)
            model.net.load_state_dict(load_file(folder / "model.safetensors"))
        except DataError:
            raise
        except Exception as err:  # json, safetensors, OS and shape errors alike mean a damaged folder
            raise DataError(f"{folder}: not a saved CTR model or a damaged one ({describe(err)})") from None
        model.net.eval()
        model.history = info.get("history", {})
        return model


def train_ctr(cfg: CtrConfig, splits: dict[str, CtrTable], out: Path | None = None) -> CtrModel:
    """A trained method. With `out`, a fresh pretraining is saved to OUT/pretrained for later runs to reuse."""
    vocab = FeatureVocab.fit(splits["train"])
    text = TextEncoder.load(cfg.text_encoder) if cfg.family else None
    model = CtrModel(cfg, vocab, text)
    if model.pretrainer is not None:
        if cfg.pretrained:
            model.load_pretraining(cfg.pretrained)
        else:
            model.history["pretrain"] = pretrain(model.pretrainer, model.rows(splits["train"], with_text=True),
                                                 cfg.pretrain, f"{cfg.family} pretraining")
            if out is not None:
                model.save_pretraining(Path(out) / "pretrained")
    train, valid = model.rows(splits["train"]), model.rows(splits["valid"])
    model.history["finetune"] = finetune(model.net, train, valid, cfg.finetune, f"{cfg.method} finetuning")
    kept = max(model.history["finetune"], key=lambda h: h["valid_auc"])
    model.extra["valid"] = {"auc": kept["valid_auc"], "logloss": kept["valid_logloss"]}  # the state kept
    return model
