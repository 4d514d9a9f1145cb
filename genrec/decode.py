"""Constrained decoding over the trie of valid semantic IDs: every recommendation is a real item.

Why our own: transformers' `prefix_allowed_tokens_fn` builds a full-vocabulary mask per beam per step in
Python, and its constrained beam search now lives in remote code. Here, as in STATIC (arXiv 2602.22647), the
trie is a stack of per-level transition tables over that level's code slots only (dense where small, CSR
rows where deep) and every step is a handful of batched tensor operations.

Scores follow transformers' beam search: full-vocabulary log-softmax of the logits, masked to the valid
children of each beam's prefix, summed over the ID's tokens (and the end-of-sequence token after it, so the
score is the probability the model gives the whole completion). `exact_topk` returns the k items of highest
score provably, by best-first search; beam search is an approximation of it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

NEG_INF = float("-inf")


@dataclass
class TrieLevel:
    """Children of every node of one level: node -> (code slot -> child id, -1 where invalid)."""

    size: int                        # codes in this level
    dense: torch.Tensor | None       # (nodes, size) child ids, or None when stored as CSR
    indptr: torch.Tensor | None      # CSR: edges of node n are indptr[n]:indptr[n+1]
    codes: torch.Tensor | None       # CSR: code slot of each edge
    child: torch.Tensor | None       # CSR: child id of each edge

    def children(self, nodes: torch.Tensor) -> torch.Tensor:
        if self.dense is not None:
            return self.dense[nodes]
        start, stop = self.indptr[nodes], self.indptr[nodes + 1]
        counts = stop - start
        rows = torch.repeat_interleave(torch.arange(len(nodes)), counts)
        offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        edges = torch.repeat_interleave(start, counts) + offsets
        out = torch.full((len(nodes), self.size), -1, dtype=torch.long)
        out[rows, self.codes[edges]] = self.child[edges]
        return out

    def nbytes(self) -> int:
        parts = [self.dense] if self.dense is not None else [self.indptr, self.codes, self.child]
        return sum(p.numel() * p.element_size() for p in parts)


class CodeTrie:
    """All valid code tuples as per-level transition tables; leaves are item ids.

    `token_ids[l]` maps level l's code slots to vocabulary ids. Built by sorting the codes once: memory is
    proportional to the number of trie nodes (a level is dense only when that costs at most `dense_factor`
    times its edges, or fewer than `dense_min` entries).
    """

    def __init__(self, codes: np.ndarray, level_sizes: list[int], token_ids: list[torch.Tensor],
                 eos_token_id: int | None = None, items: np.ndarray | None = None, dense_factor: int = 8,
                 dense_min: int = 1 << 16):
        codes = np.asarray(codes, dtype=np.int64)
        items = np.arange(len(codes)) if items is None else np.asarray(items, dtype=np.int64)
        if len(codes) == 0:
            raise ValueError("a trie needs at least one item")
        self.num_levels, self.level_sizes = codes.shape[1], list(level_sizes)
        self.token_ids = [torch.as_tensor(t, dtype=torch.long) for t in token_ids]
        self.eos_token_id = eos_token_id
        self.num_items = int(items.max()) + 1
        self.items = items
        order = np.lexsort(codes.T[::-1])
        codes, items = codes[order], items[order]
        parent = np.zeros(len(codes), dtype=np.int64)  # node id at the current level, per sorted row
        self.levels: list[TrieLevel] = []
        for level in range(self.num_levels):
            new = np.ones(len(codes), dtype=bool)
            new[1:] = (codes[1:, : level + 1] != codes[:-1, : level + 1]).any(axis=1)
            last = level == self.num_levels - 1
            child_of_row = items if last else np.cumsum(new) - 1
            edge_rows = np.flatnonzero(new)
            n_parents = int(parent.max()) + 1
            edge_parent, edge_code, edge_child = parent[edge_rows], codes[edge_rows, level], child_of_row[edge_rows]
            size = level_sizes[level]
            if n_parents * size <= max(dense_factor * len(edge_rows), dense_min):
                dense = torch.full((n_parents, size), -1, dtype=torch.long)
                dense[edge_parent, edge_code] = torch.from_numpy(edge_child)
                self.levels.append(TrieLevel(size, dense, None, None, None))
            else:
                indptr = np.searchsorted(edge_parent, np.arange(n_parents + 1))
                self.levels.append(TrieLevel(size, None, torch.from_numpy(indptr), torch.from_numpy(edge_code),
                                             torch.from_numpy(edge_child)))
            parent = child_of_row

    @classmethod
    def from_semid(cls, semid, tokenizer, items: np.ndarray | None = None, **kwargs) -> CodeTrie:
        """The trie of `semid`'s items (or a subset), with code tokens mapped by a transformers tokenizer."""
        token_ids = []
        for level in range(semid.num_levels):
            ids = tokenizer.convert_tokens_to_ids(semid.level_tokens(level))
            if any(i is None or i == tokenizer.unk_token_id for i in ids):
                raise ValueError(f"level {level}'s code tokens are not all in the tokenizer; add them first")
            token_ids.append(torch.tensor(ids))
        codes = semid.codes if items is None else semid.codes[items]
        return cls(codes, semid.level_sizes, token_ids, tokenizer.eos_token_id, items, **kwargs)

    def restrict(self, items: np.ndarray) -> CodeTrie:
        """The trie of a candidate subset of items (original item ids kept)."""
        keep = np.isin(self.items, items)
        codes = self.codes_table()[keep]
        return CodeTrie(codes, self.level_sizes, self.token_ids, self.eos_token_id, self.items[keep])

    def codes_table(self) -> np.ndarray:
        """(items in construction order, levels) codes, recovered by walking the tables."""
        paths = [(np.zeros(1, dtype=np.int64), np.zeros((1, 0), dtype=np.int64))]
        for level in self.levels:
            nodes, prefixes = paths[-1]
            children = level.children(torch.from_numpy(nodes)).numpy()
            rows, slots = np.nonzero(children >= 0)
            paths.append((children[rows, slots], np.column_stack([prefixes[rows], slots])))
        leaves, codes = paths[-1]
        table = np.zeros((self.num_items, self.num_levels), dtype=np.int64)
        table[leaves] = codes
        return table[self.items]

    def nbytes(self) -> int:
        return sum(level.nbytes() for level in self.levels)


class _FullLevel:
    def __init__(self, size: int):
        self.size = size

    def children(self, nodes: torch.Tensor) -> torch.Tensor:
        return nodes[:, None] * self.size + torch.arange(self.size)


class FullCodeSpace:
    """Every code tuple allowed: the same beam search with no constraint, to measure what the constraint costs.
    Leaves are flat indices into the product of the level sizes."""

    def __init__(self, level_sizes: list[int], token_ids: list[torch.Tensor], eos_token_id: int | None = None):
        self.levels = [_FullLevel(size) for size in level_sizes]
        self.level_sizes, self.num_levels = list(level_sizes), len(level_sizes)
        self.token_ids = [torch.as_tensor(t, dtype=torch.long) for t in token_ids]
        self.eos_token_id = eos_token_id
        self.num_items = int(np.prod(level_sizes))


def prefix_allowed_tokens_fn(trie: CodeTrie, prompt_length: int):
    """transformers' per-beam callback over a Python dict trie: the baseline our decoder replaces."""
    table: dict[tuple[int, ...], list[int]] = {}
    for row in trie.codes_table():
        tokens = [int(trie.token_ids[level][code]) for level, code in enumerate(row)]
        for depth in range(len(tokens)):
            table.setdefault(tuple(tokens[:depth]), []).append(tokens[depth])
    table = {prefix: sorted(set(ids)) for prefix, ids in table.items()}
    eos = [trie.eos_token_id] if trie.eos_token_id is not None else []

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        generated = tuple(input_ids[prompt_length:].tolist())
        return table.get(generated, eos) if len(generated) < trie.num_levels else eos

    return allowed


def exclusion_mask(exclude, batch: int, num_items: int) -> torch.Tensor | None:
    """(batch, items) bool: True for items a user must not be recommended (e.g. their history)."""
    if exclude is None:
        return None
    if isinstance(exclude, torch.Tensor):
        return exclude.bool()
    mask = torch.zeros(batch, num_items, dtype=torch.bool)
    for row, items in enumerate(exclude):
        items = torch.from_numpy(np.array(items, dtype=np.int64))  # a copy: arrays may be read-only
        mask[row, items[items < num_items]] = True
    return mask


def _tree_mask(prompt_keep: torch.Tensor, ancestry: torch.Tensor, kv_len: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4D mask: each beam's new token sees the prompt's real tokens and its own ancestors only."""
    batch, width, _ = ancestry.shape
    allowed = torch.zeros(batch, width, kv_len, dtype=torch.bool)
    allowed[:, :, : prompt_keep.shape[1]] = prompt_keep[:, None, :]
    allowed.scatter_(2, ancestry, True)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


@torch.no_grad()
def beam_search(model, input_ids: torch.Tensor, trie: CodeTrie, num_beams: int = 20,
                attention_mask: torch.Tensor | None = None, exclude=None, temperature: float = 1.0,
                do_sample: bool = False, seed: int | None = None, include_eos: bool = True
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `num_beams` items per prompt (left-padded batch): (items, scores), best first; -1 / -inf pad.

    The prompt is run once and its keys and values are stored once per prompt, not once per beam: a step
    feeds all beams of a prompt as one short sequence, with a tree attention mask so that each beam sees
    the prompt and its own earlier codes. Beam reordering is bookkeeping on cache slots, not a copy of the
    cache, so the cost of a step barely grows with the prompt.

    `exclude`: per prompt, item ids never to return (e.g. the history), or a (batch, items) bool mask.
    `do_sample`: choose beams by Gumbel-top-k on their scores (diverse lists); reported scores stay exact.
    """
    model.eval()
    batch, prompt_len = input_ids.shape
    exclusion = exclusion_mask(exclude, batch, trie.num_items)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    prompt_mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = model(input_ids=input_ids, attention_mask=prompt_mask, position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1)
    eos = torch.tensor([trie.eos_token_id if trie.eos_token_id is not None else 0])  # read only with include_eos
    columns = [*trie.token_ids, eos]  # the vocabulary ids each step scores: the next level's codes, then eos
    logprobs = _column_logprobs(out.logits[:, -1:], columns[0], temperature)  # (batch, beams, level's codes)
    scores = torch.zeros(batch, 1)
    nodes = torch.zeros(batch, 1, dtype=torch.long)
    ancestry = torch.zeros(batch, 1, 0, dtype=torch.long)                     # cache slots of each beam's codes
    kv_len, first_position = prompt_len, positions[:, -1:] + 1
    for level, table in enumerate(trie.levels):
        width = scores.shape[1]
        children = table.children(nodes.reshape(-1)).reshape(batch, width, table.size)
        candidates = scores[..., None] + logprobs
        invalid = children < 0
        if exclusion is not None and level == trie.num_levels - 1:
            invalid |= exclusion.gather(1, children.clamp(min=0).reshape(batch, -1)).reshape(invalid.shape)
        candidates = candidates.masked_fill(invalid, NEG_INF).reshape(batch, -1)
        ranking = candidates
        if do_sample:
            gumbel = -torch.log(-torch.log(torch.rand(candidates.shape, generator=generator).clamp(1e-20, 1.0)))
            ranking = candidates + gumbel
        picked = ranking.topk(min(num_beams, candidates.shape[1]), dim=1).indices
        scores = candidates.gather(1, picked)
        if do_sample:  # report beams best first by their true scores
            scores, order = scores.sort(dim=1, descending=True)
            picked = picked.gather(1, order)
        origin, slot = picked // table.size, picked % table.size
        nodes = children.reshape(batch, -1).gather(1, picked).clamp(min=0)
        ancestry = ancestry.gather(1, origin[..., None].expand(-1, -1, ancestry.shape[2]))
        if level < trie.num_levels - 1 or include_eos:
            width = picked.shape[1]
            new_slots = torch.arange(kv_len, kv_len + width).expand(batch, width)
            ancestry = torch.cat([ancestry, new_slots[..., None]], dim=2)
            kv_len += width
            mask = _tree_mask(prompt_mask.bool(), ancestry, kv_len, model.dtype)
            out = model(input_ids=trie.token_ids[level][slot], attention_mask=mask,
                        position_ids=(first_position + level).expand(batch, width), cache=cache, use_cache=True)
            logprobs = _column_logprobs(out.logits, columns[level + 1], temperature)
    if include_eos and trie.eos_token_id is not None:
        scores = torch.where(torch.isfinite(scores), scores + logprobs[..., 0], scores)
    items = torch.where(torch.isfinite(scores), nodes, torch.full_like(nodes, -1))
    scores, order = scores.sort(dim=1, descending=True)
    return items.gather(1, order), scores


def _column_logprobs(logits: torch.Tensor, columns: torch.Tensor, temperature: float) -> torch.Tensor:
    """Full-vocabulary log-softmax read at `columns` only: one logsumexp pass instead of writing every
    vocabulary entry, which is most of a step's cost outside the model at batch 1."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits[..., columns] - torch.logsumexp(logits, dim=-1, keepdim=True)


def _log_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = logits.float()
    return torch.log_softmax(logits / temperature if temperature != 1.0 else logits, dim=-1)


@torch.no_grad()
def exact_topk(model, input_ids: torch.Tensor, trie: CodeTrie, k: int, attention_mask: torch.Tensor | None = None,
               exclude=None, include_eos: bool = True, expand_per_step: int = 64
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The k items with the highest score, provably: best-first search over the trie, per prompt.

    Log-probabilities are never positive, so a prefix's score bounds every completion of it; popping the
    frontier in score order, the first k complete IDs popped are the top k. Up to `expand_per_step` frontier
    prefixes are expanded together in one forward pass over the prompt's cached keys and values.
    """
    model.eval()
    batch = input_ids.shape[0]
    exclusion = exclusion_mask(exclude, batch, trie.num_items)
    mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
    depth_done = trie.num_levels + (1 if include_eos and trie.eos_token_id is not None else 0)
    all_items = torch.full((batch, k), -1, dtype=torch.long)
    all_scores = torch.full((batch, k), NEG_INF)
    for row in range(batch):
        prompt = input_ids[row, mask[row].bool()][None]
        cache = DynamicCache()
        out = model(input_ids=prompt, cache=cache, use_cache=True, logits_to_keep=1)
        prompt_logprobs = _log_softmax(out.logits[:, -1], 1.0)
        # frontier entries: (-score, tie, depth, node, tokens)
        frontier = [(0.0, 0, 0, 0, ())]
        counter, found = 1, []
        while frontier and len(found) < k:
            if frontier[0][2] == depth_done:
                neg, _, _, node, _ = heapq.heappop(frontier)
                found.append((node, -neg))
                continue
            group = []
            while frontier and frontier[0][2] < depth_done and len(group) < expand_per_step:
                group.append(heapq.heappop(frontier))
            for depth in sorted({g[2] for g in group}):
                members = [g for g in group if g[2] == depth]
                continuations = [list(g[4]) for g in members]
                logprobs = (prompt_logprobs.expand(len(members), -1) if depth == 0
                            else _logprobs_after(model, cache, prompt.shape[1], continuations))
                for (neg, _, _, node, tokens), lp in zip(members, logprobs):
                    if depth == trie.num_levels:  # the end-of-sequence step
                        heapq.heappush(frontier, (neg - float(lp[trie.eos_token_id]), counter, depth + 1, node, tokens))
                        counter += 1
                        continue
                    children = trie.levels[depth].children(torch.tensor([node]))[0]
                    slots = torch.nonzero(children >= 0).flatten()
                    if exclusion is not None and depth == trie.num_levels - 1:
                        slots = slots[~exclusion[row, children[slots]]]
                    token_ids = trie.token_ids[depth][slots]
                    for slot, token, score in zip(slots.tolist(), token_ids.tolist(), lp[token_ids].tolist()):
                        heapq.heappush(frontier, (neg - score, counter, depth + 1, int(children[slot]),
                                                  tokens + (token,)))
                        counter += 1
        for j, (item, score) in enumerate(found):
            all_items[row, j], all_scores[row, j] = item, score
    return all_items, all_scores


def _logprobs_after(model, cache: DynamicCache, prompt_len: int, continuations: list[list[int]]) -> torch.Tensor:
    """Next-token log-probabilities after the prompt plus each continuation (all of one length).

    All continuations go in as one sequence after the cached prompt, each seeing only the prompt and its own
    tokens (block-causal mask); the cache is cropped back to the prompt afterwards.
    """
    count, depth = len(continuations), len(continuations[0])
    tokens = torch.tensor(continuations).reshape(1, -1)
    own = torch.arange(count).repeat_interleave(depth)
    step = torch.arange(depth).repeat(count)
    allowed = (own[:, None] == own[None, :]) & (step[None, :] <= step[:, None])
    allowed = torch.cat([torch.ones(count * depth, prompt_len, dtype=torch.bool), allowed], dim=1)
    mask = torch.zeros(allowed.shape, dtype=model.dtype).masked_fill_(~allowed, torch.finfo(model.dtype).min)
    out = model(input_ids=tokens, attention_mask=mask[None, None], position_ids=(prompt_len + step)[None],
                cache=cache, use_cache=True)
    cache.crop(-(count * depth))
    return _log_softmax(out.logits[0, depth - 1 :: depth], 1.0)


def constrained_generate(model, input_ids, logits_processor=None, stopping_criteria=None, generation_config=None,
                         trie: CodeTrie | None = None, exact: bool = False, exclude=None, **model_kwargs):
    """`model.generate(input_ids, custom_generate=constrained_generate, trie=..., num_beams=B)`.

    Returns (items, scores) like `beam_search` (or `exact_topk` with `exact=True`, k = num_beams).
    """
    if trie is None:
        raise ValueError("pass trie=CodeTrie.from_semid(...) to generate")
    num_beams = generation_config.num_beams if generation_config is not None else 20
    mask = model_kwargs.get("attention_mask")
    if num_beams > 1 and input_ids.shape[0] % num_beams == 0:  # generate() repeats each prompt per beam
        first = input_ids[::num_beams]
        if torch.equal(input_ids, first.repeat_interleave(num_beams, dim=0)):
            input_ids, mask = first, (mask[::num_beams] if mask is not None else None)
    if exact:
        return exact_topk(model, input_ids, trie, num_beams, attention_mask=mask, exclude=exclude)
    temperature = generation_config.temperature if generation_config is not None and generation_config.do_sample \
        else 1.0
    do_sample = bool(generation_config.do_sample) if generation_config is not None else False
    return beam_search(model, input_ids, trie, num_beams, attention_mask=mask, exclude=exclude,
                       temperature=temperature or 1.0, do_sample=do_sample)
