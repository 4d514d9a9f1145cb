"""The parallel semantic-ID head (RPG, Hou et al., KDD'25): every code of the next item from one hidden state.

Each history item enters the LM as one position, the mean (or sum) of its code tokens' input embeddings. From
the hidden state at an item's position, one residual block per code position (identity at the start) gives
that position's query; its logits are cosine similarities with the position's code-token embeddings (the same
rows the inputs use) over a temperature. Training puts a loss at every position of the sequence, as SASRec
does: each code's cross-entropy (RPG's) or the item's among all items. An item's score is the sum over
positions of the log-softmax of its codes, so ranking the whole catalogue is one sparse product (the items'
one-hot code matrix times the code scores) plus a top-k: exact, and no decoding loop. For catalogues too large for
a dense (users x items) score table, `trie_beam_search` walks the code trie with the same scores.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from .decode import CodeTrie, exclusion_mask

NEG_INF = float("-inf")
TEMPERATURE = 0.07  # RPG's
LOSSES = ("codes", "items")
DENSE_CELLS = 1 << 25  # users x items per dense scoring chunk (128 MB of float32)


class ParallelHead(nn.Module):
    """Per code position, a residual block x + SiLU(W_p x + b_p) (W_p starts at zero, so every position starts
    from the shared state), all positions in one batched product."""

    def __init__(self, hidden: int, positions: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(positions, hidden, hidden))
        self.bias = nn.Parameter(torch.zeros(positions, hidden))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(n, hidden) -> (n, positions, hidden), unit length."""
        queries = states[:, None, :] + nn.functional.silu(torch.einsum("nh,pkh->npk", states, self.weight) + self.bias)
        return nn.functional.normalize(queries, dim=-1)


class ParallelNet(nn.Module):
    """Decoder + item-level inputs + parallel head as one module: what the trainer trains and recommend scores.

    `decoder` is the LM's transformer without its output layer (a LlamaModel / Qwen2Model, possibly holding
    LoRA layers), whose input embedding (peft's trainable code rows included) gives the code-token rows;
    `codes` (items, positions) every item's semantic ID; `level_tokens[p]` the vocabulary ids of position p's
    codes, in code order.
    """

    def __init__(self, decoder: nn.Module, head: ParallelHead, codes: torch.Tensor, level_tokens: list[torch.Tensor],
                 pad_id: int, reduce: str = "mean", dropout: float = 0.0, loss: str = "codes"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"the parallel head's loss must be one of {', '.join(LOSSES)}, not {loss!r}")
        self.loss = loss
        self.decoder, self.head = decoder, head
        width = max(len(t) for t in level_tokens)
        table = torch.full((len(level_tokens), width), pad_id, dtype=torch.long)
        for position, tokens in enumerate(level_tokens):
            table[position, : len(tokens)] = tokens
        item_tokens = table[torch.arange(len(level_tokens)), codes]  # (items, positions) vocabulary ids
        self.register_buffer("codes", codes, persistent=False)
        self.register_buffer("item_tokens", torch.cat([item_tokens, torch.full_like(item_tokens[:1], pad_id)]),
                             persistent=False)  # the last row pads
        self.register_buffer("level_tokens", table, persistent=False)
        sizes = torch.tensor([len(t) for t in level_tokens])
        self.register_buffer("level_mask", torch.arange(width)[None, :] < sizes[:, None], persistent=False)
        self.reduce, self.dropout = reduce, nn.Dropout(dropout)
        self.num_items = len(codes)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Input-embedding rows, through the decoder's own module (not a second reference to it, which a
        checkpoint would save twice)."""
        return self.decoder.get_input_embeddings()(tokens)

    def item_inputs(self, items: torch.Tensor) -> torch.Tensor:
        """(batch, length) item ids, -1 for padding -> (batch, length, hidden): mean or sum of code rows."""
        rows = self.embed(self.item_tokens[items.masked_fill(items < 0, self.num_items)])
        return rows.mean(-2) if self.reduce == "mean" else rows.sum(-2)

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, hidden) of left- or right-padded item sequences (-1 pads)."""
        mask = (items >= 0).long()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        inputs = self.dropout(self.item_inputs(items))
        return self.decoder(inputs_embeds=inputs, attention_mask=mask, position_ids=positions).last_hidden_state

    def code_logits(self, states: torch.Tensor) -> torch.Tensor:
        """(n, hidden) -> (n, positions, width) float32: scaled cosines with each position's codes (-inf past
        its size)."""
        codes = nn.functional.normalize(self.embed(self.level_tokens), dim=-1)  # (positions, width, hidden)
        logits = torch.einsum("nph,pwh->npw", self.head(states), codes) / TEMPERATURE
        return logits.float().masked_fill(~self.level_mask, NEG_INF)

    def log_probs(self, states: torch.Tensor) -> torch.Tensor:
        """(n, hidden) -> (n, positions, width): log-softmax over each position's codes."""
        return torch.log_softmax(self.code_logits(states), dim=-1)

    def forward(self, items: torch.Tensor, targets: torch.Tensor) -> dict:
        """The loss at every target (-1: no target at that position): with `loss="codes"` (RPG's) the mean
        cross-entropy of each of its codes; with `loss="items"` the cross-entropy of the target among all items,
        each scored by the sum of its code logits (the ranking's own score up to a per-user constant)."""
        keep = targets >= 0
        states, wanted = self.encode(items)[keep], targets[keep]
        if self.loss == "items":  # the product reads only each item's own codes, never the -inf past a size
            return {"loss": nn.functional.cross_entropy(self.item_sums(self.code_logits(states)), wanted)}
        logp = self.log_probs(states)
        return {"loss": -logp.gather(-1, self.codes[wanted][..., None]).mean()}

    def item_sums(self, per_code: torch.Tensor) -> torch.Tensor:
        """(n, positions, width) -> (n, items): each item's sum over positions of its code's entry, as one sparse
        product with the items' one-hot code matrix (an order of magnitude faster than a gather per position)."""
        if getattr(self, "_onehot", None) is None or self._onehot[0].device != per_code.device:
            onehot = code_onehot(self.codes, self.level_mask.shape[1])
            self._onehot = onehot, transpose_csr(onehot)
        return CodeSum.apply(per_code.reshape(len(per_code), -1), *self._onehot)

    @torch.no_grad()
    def user_log_probs(self, histories: list[np.ndarray], max_history: int) -> torch.Tensor:
        """(users, positions, width) log-probabilities of the next item's codes after each history."""
        return self.log_probs(self.encode(pad_left(histories, max_history).to(self.codes.device))[:, -1])


def code_onehot(codes: torch.Tensor, width: int) -> torch.Tensor:
    """(items, positions) codes -> the sparse CSR (items, positions * width) 0/1 matrix of which code each item
    has at each position: an item's score is one row of it times the flattened code scores."""
    items, positions = codes.shape
    columns = (codes + torch.arange(positions, device=codes.device) * width).reshape(-1)
    crow = torch.arange(0, items * positions + 1, positions, device=codes.device)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are stable
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, columns, torch.ones(len(columns), device=codes.device),
                                       (items, positions * width))


def transpose_csr(matrix: torch.Tensor) -> torch.Tensor:
    """The transpose of a sparse CSR matrix, itself CSR (the gradient's product needs one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return matrix.to_sparse_coo().t().coalesce().to_sparse_csr()


class CodeSum(torch.autograd.Function):
    """x (n, positions * width) -> x @ onehot.T (n, items), the gradient through the transposed matrix."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, onehot: torch.Tensor, onehot_t: torch.Tensor) -> torch.Tensor:
        ctx.onehot_t, ctx.dtype = onehot_t, flat.dtype
        with torch.autocast(flat.device.type, enabled=False):  # in the matrix's precision, also under bf16
            return (onehot @ flat.to(onehot.dtype).t()).t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            flat = ctx.onehot_t @ grad.to(ctx.onehot_t.dtype).t().contiguous()
        return flat.t().to(ctx.dtype), None, None


def pad_left(histories: list[np.ndarray], max_len: int) -> torch.Tensor:
    """The last `max_len` items of each history, left-padded with -1."""
    width = max(1, min(max_len, max((len(h) for h in histories), default=1)))
    out = np.full((len(histories), width), -1, dtype=np.int64)
    for row, h in enumerate(histories):
        h = np.asarray(h[-width:], dtype=np.int64)
        if len(h):
            out[row, width - len(h):] = h
    return torch.from_numpy(out)


def item_scores(logp: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(users, positions, width) log-probabilities, (items, positions) codes -> (users, items): the sum over
    positions of each item's code log-probabilities, as one sparse product."""
    return (code_onehot(codes, logp.shape[2]) @ logp.reshape(len(logp), -1).t()).t().contiguous()


def top_items(scores: torch.Tensor, k: int, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(items, scores) of the k best columns per row, best first, ties by the lower item id; -1 where the
    score is -inf (excluded). `items` maps columns to item ids (a candidate subset)."""
    values, columns = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return best_first(columns if items is None else items[columns], values, k)


def best_first(ids: torch.Tensor, values: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best (id, value) pairs per row, by value descending then id ascending; -1 where the value is -inf."""
    by_id = torch.sort(ids, dim=1, stable=True).indices
    ids, values = ids.gather(1, by_id), values.gather(1, by_id)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    ids, values = ids.gather(1, order), values.gather(1, order)
    return ids.masked_fill(torch.isneginf(values), -1), values


def dense_topk(logp: torch.Tensor, codes: torch.Tensor, k: int, exclude: list[np.ndarray] | None = None,
               candidates: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k over the catalogue (or `candidates`), scoring every item; `exclude` per user is skipped."""
    items = None if candidates is None else torch.as_tensor(np.asarray(candidates, dtype=np.int64))
    scores = item_scores(logp, codes if items is None else codes[items])
    if exclude is not None:
        mask = exclusion_mask(exclude, len(scores), len(codes))
        scores = scores.masked_fill(mask if items is None else mask[:, items], NEG_INF)
    return top_items(scores, k, items)


def trie_beam_search(logp: torch.Tensor, trie: CodeTrie, beams: int, k: int,
                     exclude: list[np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search over the code trie with the parallel head's scores (the sum of code log-probabilities), for
    catalogues whose dense score table is too large. Keeps `beams` prefixes per level; exact when `beams` is at
    least the number of items under any level's prefixes (e.g. the catalogue size). At least `k` beams are kept,
    so k items always come back (when the catalogue has them)."""
    users, beams = logp.shape[0], max(beams, k)
    nodes = torch.zeros(users, 1, dtype=torch.long)
    score = torch.zeros(users, 1)
    for position, level in enumerate(trie.levels):
        children = level.children(nodes.reshape(-1)).reshape(users, nodes.shape[1], level.size)
        step = logp[:, position, : level.size]
        total = (score[:, :, None] + step[:, None, :]).masked_fill(children < 0, NEG_INF)
        if position == len(trie.levels) - 1 and exclude is not None:
            banned = exclusion_mask(exclude, users, trie.num_items)
            total = total.masked_fill(banned.gather(1, children.clamp(min=0).reshape(users, -1)).reshape(total.shape),
                                      NEG_INF)
        width = min(beams, total[0].numel())
        score, flat = torch.topk(total.reshape(users, -1), width, dim=1)
        nodes = children.reshape(users, -1).gather(1, flat)
        nodes = nodes.masked_fill(torch.isneginf(score), 0)  # dead beams point at a valid node, scored -inf
    return best_first(nodes, score, k)
