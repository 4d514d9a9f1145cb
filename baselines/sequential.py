"""ID-based sequential recommenders trained the same way: SASRec (Kang & McAuley, 2018: causal
self-attention, learned positions), GRU4Rec (Hidasi et al., 2016: a GRU over the sequence) and BERT4Rec
(Sun et al., 2019: bidirectional self-attention trained by the cloze task), all with item embeddings shared
between input and output.

Two losses: `ce`, a full-softmax cross-entropy over all items at every position (the strong variant a fair
comparison needs), and `bce`, binary cross-entropy with one sampled negative per position (the original
paper's, which many tables report). The causal mask is applied (LLM-ESR's released SASRec forgets it).
BERT4Rec always uses its own objective: random items (`mask_prob`) are replaced by a [MASK] token and predicted
with a full softmax, each sequence masked `dupe_factor` times per epoch as in the paper's data generation; it
recommends by appending [MASK] to the history.
Model selection: validation NDCG@10 with full ranking, early stopping.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from genrec.atomic import mark
from genrec.data import DataError, Split
from genrec.errors import describe
from genrec.evaluate import mask_history, ranking_metrics, top_k


@dataclass
class SequentialConfig:
    arch: str = "sasrec"      # or "gru4rec", "bert4rec"
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    max_len: int = 50
    loss: str = "ce"          # or "bce" (sasrec, gru4rec)
    mask_prob: float = 0.2    # bert4rec: share of items masked in training
    dupe_factor: int = 10     # bert4rec: each sequence is masked this many times per epoch (the paper's 10)
    lr: float | None = None   # default: 1e-3 for sasrec, 1e-2 for gru4rec (which learns slowly at 1e-3)
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 200
    patience: int = 10        # epochs without a better validation NDCG@10
    eval_users: int = 5000    # validation users ranked after each epoch
    seed: int = 0

    def __post_init__(self):
        if self.lr is None:
            self.lr = 1e-2 if self.arch == "gru4rec" else 1e-3


class _ItemSequenceModel(nn.Module):
    """The item table both encoders share: input embeddings and output scores (id 0 pads; item i is i + 1)."""

    extra_tokens = 0  # rows after the items (BERT4Rec's [MASK])

    def __init__(self, num_items: int, cfg: SequentialConfig):
        super().__init__()
        self.cfg, self.num_items = cfg, num_items
        self.items = nn.Embedding(num_items + 1 + self.extra_tokens, cfg.hidden, padding_idx=0)

    def _small_init(self, *tables: nn.Embedding) -> None:
        """Small initial scores: a loss near log(items) at the start."""
        for table in tables:
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def item_table(self) -> torch.Tensor:
        """(num_items, hidden): the vectors that score every real item (no padding or [MASK] row)."""
        return self.items.weight[1 : self.num_items + 1]

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item_table().T

    def user_vectors(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(users, hidden): the representation that scores each user's next item."""
        return self(_pad_left(histories, self.cfg.max_len))[:, -1]


class SASRecModel(_ItemSequenceModel):
    causal = True

    def __init__(self, num_items: int, cfg: SequentialConfig):
        super().__init__(num_items, cfg)
        self.positions = nn.Embedding(cfg.max_len, cfg.hidden)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, cfg.hidden, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self._small_init(self.items, self.positions)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """(batch, length) item ids + 1 (0 = padding, left) -> (batch, length, hidden); position t sees <= t."""
        length = seqs.shape[1]
        x = self.embed(seqs) * self.cfg.hidden ** 0.5 + self.positions(torch.arange(length))
        if self.causal:
            x = self.encoder(self.dropout(x), mask=torch.triu(torch.ones(length, length, dtype=torch.bool), 1))
        else:  # bidirectional: only padding is hidden
            x = self.encoder(self.dropout(x), src_key_padding_mask=seqs == 0)
        return self.norm(x)

    def embed(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.items(seqs)


class BERT4RecModel(SASRecModel):
    """SASRec's encoder without the causal mask, with a [MASK] token (id num_items + 1)."""

    causal, extra_tokens = False, 1

    @property
    def mask_token(self) -> int:
        return self.num_items + 1

    def user_vectors(self, histories: list[np.ndarray]) -> torch.Tensor:
        seqs = _pad_left(histories, self.cfg.max_len - 1)
        seqs = torch.cat([seqs, torch.full((len(histories), 1), self.mask_token)], dim=1)
        return self(seqs)[:, -1]


class GRU4RecModel(_ItemSequenceModel):
    """A GRU over the item embeddings; causal by construction."""

    def __init__(self, num_items: int, cfg: SequentialConfig):
        super().__init__(num_items, cfg)
        self._small_init(self.items)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.gru(self.dropout(self.items(seqs)))[0]


ARCHS = {"sasrec": SASRecModel, "gru4rec": GRU4RecModel, "bert4rec": BERT4RecModel}


def _pad_left(histories: list[np.ndarray], max_len: int) -> torch.Tensor:
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for row, h in enumerate(histories):
        h = np.asarray(h[-max_len:]) + 1
        out[row, max_len - len(h):] = h
    return torch.from_numpy(out)


class SequentialRecommender:
    """Train on a split's training part; recommend(histories, k) ranks the whole catalogue.

    Subclasses (LLM-ESR, knowledge augmentation) change the model (`_build_model`), add a loss term
    (`_extra_loss`) or per-fit / per-epoch state (`_start_fit`, `_start_epoch`) and keep the rest.
    """

    def __init__(self, num_items: int, cfg: SequentialConfig | None = None, item_init: np.ndarray | None = None,
                 method: str | None = None):
        """`item_init`: (num_items, hidden) starting item vectors (Elephant); `method`: the name it is saved as."""
        self.cfg = cfg or SequentialConfig()
        if self.cfg.loss not in ("ce", "bce"):
            raise DataError(f"loss must be 'ce' or 'bce', not {self.cfg.loss!r}")
        if self.cfg.arch == "bert4rec" and self.cfg.loss != "ce":
            raise DataError("bert4rec trains with its cloze objective (full softmax); loss must be 'ce'")
        torch.manual_seed(self.cfg.seed)
        self.model = self._build_model(num_items)
        self.method = method or self.cfg.arch
        self.history: list[dict] = []
        self.extra: dict = {}
        if item_init is not None:
            if tuple(item_init.shape) != (num_items, self.cfg.hidden):
                raise DataError(f"item_init has shape {tuple(item_init.shape)}, expected ({num_items}, "
                                f"{self.cfg.hidden})")
            with torch.no_grad():
                self.model.item_table().copy_(torch.as_tensor(item_init, dtype=torch.float32))

    def _build_model(self, num_items: int) -> nn.Module:
        if self.cfg.arch not in ARCHS:
            raise DataError(f"arch must be one of {', '.join(ARCHS)}, not {self.cfg.arch!r}")
        return ARCHS[self.cfg.arch](num_items, self.cfg)

    def _start_fit(self, seqs: torch.Tensor) -> None:
        """Called once before training with the padded training sequences."""

    def _start_epoch(self, seqs: torch.Tensor) -> None:
        """Called before each epoch."""

    def _extra_loss(self, hidden: torch.Tensor, rows: torch.Tensor) -> torch.Tensor | float:
        """A term added to the loss, from the encoder's outputs of training rows `rows`."""
        return 0.0

    def _loss(self, seqs: torch.Tensor, rows: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.cfg.arch == "bert4rec":
            return self._cloze_loss(seqs, generator)
        inputs, targets = seqs[:, :-1], seqs[:, 1:]
        hidden = self.model(inputs)
        mask = (targets > 0) & (inputs > 0)
        extra = self._extra_loss(hidden, rows)
        if self.cfg.loss == "ce":
            return nn.functional.cross_entropy(self.model.scores(hidden[mask]), targets[mask] - 1) + extra
        h, pos = hidden[mask], targets[mask]
        neg = torch.randint(1, self.model.num_items + 1, pos.shape, generator=generator)
        table = self.model.item_table()
        pos_logit = (h * table[pos - 1]).sum(-1)
        neg_logit = (h * table[neg - 1]).sum(-1)
        return (nn.functional.softplus(-pos_logit) + nn.functional.softplus(neg_logit)).mean() + extra

    def _cloze_loss(self, seqs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """BERT4Rec: predict randomly masked items from both sides (each sequence has at least its last masked)."""
        masked = (torch.rand(seqs.shape, generator=generator) < self.cfg.mask_prob) & (seqs > 0)
        masked[~masked.any(dim=1), -1] = True  # left padding: the last position is always a real item
        hidden = self.model(seqs.masked_fill(masked, self.model.mask_token))
        return nn.functional.cross_entropy(self.model.scores(hidden[masked]), seqs[masked] - 1)

    def training_sequences(self, split: Split) -> torch.Tensor:
        """The padded training sequences (users with at least two training items), one row per user."""
        train = [s for s in split.train if len(s) >= 2]
        return _pad_left(train, self.cfg.max_len if self.cfg.arch == "bert4rec" else self.cfg.max_len + 1)

    def fit(self, split: Split) -> dict:
        """Train on `split.train` only; keep the weights with the best validation NDCG@10."""
        cfg = self.cfg
        generator = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        seqs = self.training_sequences(split)
        valid_rows = np.arange(len(split.valid))
        if len(valid_rows) > cfg.eval_users:
            valid_rows = np.sort(rng.choice(valid_rows, cfg.eval_users, replace=False))
        histories = [split.valid.histories[i] for i in valid_rows]
        targets = split.valid.targets[valid_rows]
        self._start_fit(seqs)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best, best_state, stale = -1.0, None, 0
        bar = tqdm(range(cfg.epochs), desc=f"{self.method} ({cfg.loss})", leave=False)
        for epoch in bar:
            self._start_epoch(seqs)
            self.model.train()
            passes = cfg.dupe_factor if cfg.arch == "bert4rec" else 1  # a cloze pass trains on few positions
            order = torch.randperm(len(seqs) * passes, generator=generator) % len(seqs)
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                loss = self._loss(seqs[rows], rows, generator)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item()
            ndcg = ranking_metrics(self.recommend(histories, 20), targets)["ndcg@10"]
            self.history.append({"epoch": epoch + 1, "loss": total / max(1, -(-len(order) // cfg.batch_size)),
                                 "valid_ndcg@10": ndcg})
            bar.set_postfix(loss=f"{self.history[-1]['loss']:.3f}", ndcg10=f"{ndcg:.4f}")
            if ndcg > best:
                best, best_state, stale = ndcg, copy.deepcopy(self.model.state_dict()), 0
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return {"epochs": len(self.history), "best_valid_ndcg@10": best}

    @torch.no_grad()
    def recommend(self, histories: list[np.ndarray], k: int, exclude_history: bool = False,
                  batch_size: int = 512) -> np.ndarray:
        return self.recommend_scored(histories, k, exclude_history, batch_size)[0]

    @torch.no_grad()
    def score_items(self, histories: list[np.ndarray]) -> np.ndarray:
        """(users, items): the model's logit for every item after each history (what score fusion blends)."""
        self.model.eval()
        return self.model.scores(self.model.user_vectors(histories)).numpy()

    @torch.no_grad()
    def recommend_scored(self, histories: list[np.ndarray], k: int, exclude_history: bool = False,
                         batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(items, scores), each (users, k), best first: the top k and their scores (the model's logits)."""
        self.model.eval()
        items, values = [], []
        for start in range(0, len(histories), batch_size):
            chunk = histories[start : start + batch_size]
            scores = self.score_items(chunk)
            scores = mask_history(scores, chunk) if exclude_history else scores
            top = top_k(scores, k)
            items.append(top)
            values.append(np.take_along_axis(scores, np.maximum(top, 0), axis=1))
        if not items:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(items), np.concatenate(values)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = mark(folder)
        torch.save(self.model.state_dict(), folder / "model.pt")
        info = {"method": self.method, "num_items": self.model.num_items, "config": asdict(self.cfg),
                "history": self.history, **self.extra}
        (folder / "baseline.json").write_text(json.dumps(info, indent=2))

    @classmethod
    def _restore(cls, info: dict, state: dict) -> SequentialRecommender:
        """An untrained model of the saved shape, for `from_pretrained` to load the weights into."""
        return cls(info["num_items"], SequentialConfig(**info["config"]), method=info.get("method"))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> SequentialRecommender:
        folder = Path(folder)
        try:
            info = json.loads((folder / "baseline.json").read_text())
            state = torch.load(folder / "model.pt", weights_only=True)
            model = cls._restore(info, state)
            model.model.load_state_dict(state)
        except Exception as err:  # json, pickle, OS and shape errors alike mean a damaged folder
            raise DataError(f"{folder}: not a saved {cls.__name__} or a damaged one ({describe(err)})") from None
        bad = [name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()]
        if bad:
            raise DataError(f"{folder}/model.pt: {bad[0]} holds NaN or infinite values; the file is damaged or "
                            "training diverged")
        model.history = info.get("history", [])
        return model
