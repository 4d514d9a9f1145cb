"""The constrained decoder against brute force and against transformers' own beam search."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from genrec.decode import CodeTrie, beam_search, constrained_generate, exact_topk, prefix_allowed_tokens_fn

PAD, EOS, LEVELS = 0, 1, (4, 5, 3)
TOKEN_IDS = [torch.arange(10, 14), torch.arange(14, 19), torch.arange(19, 22)]
VOCAB = 40


def _world(seed=0, n_items=40):
    rng = np.random.default_rng(seed)
    space = np.array(np.meshgrid(*[np.arange(k) for k in LEVELS], indexing="ij")).reshape(3, -1).T
    codes = space[rng.choice(len(space), n_items, replace=False)]
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=PAD, eos_token_id=EOS,
                         bos_token_id=EOS)
    model = LlamaForCausalLM(config).eval()
    trie = CodeTrie(codes, list(LEVELS), TOKEN_IDS, EOS)
    prompts = [rng.integers(22, VOCAB, size=n).tolist() for n in (5, 9, 7)]
    width = max(map(len, prompts))
    input_ids = torch.tensor([[PAD] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    return codes, model, trie, prompts, input_ids, mask


@torch.no_grad()
def _brute_force(model, prompt, codes, include_eos=True):
    """Teacher-forced log-probability of every item's tokens (and EOS) after the prompt."""
    tokens = torch.stack([TOKEN_IDS[level][torch.from_numpy(codes[:, level])] for level in range(3)], dim=1)
    if include_eos:
        tokens = torch.cat([tokens, torch.full((len(codes), 1), EOS)], dim=1)
    seqs = torch.cat([torch.tensor(prompt).expand(len(codes), -1), tokens], dim=1)
    logprobs = torch.log_softmax(model(seqs).logits.float(), dim=-1)
    start = len(prompt)
    picked = logprobs[:, start - 1 : -1].gather(2, tokens.unsqueeze(-1)).squeeze(-1)
    return picked.sum(1)


@pytest.mark.parametrize("seed", [0, 1])
def test_full_width_beam_search_equals_brute_force(seed):
    codes, model, trie, prompts, input_ids, mask = _world(seed)
    items, scores = beam_search(model, input_ids, trie, num_beams=len(codes), attention_mask=mask)
    for row, prompt in enumerate(prompts):
        reference = _brute_force(model, prompt, codes)
        order = torch.argsort(reference, descending=True)
        assert items[row].tolist() == order.tolist()
        torch.testing.assert_close(scores[row], reference[order], atol=1e-5, rtol=0)


@pytest.mark.parametrize("beams", [3, 8])
def test_beam_search_equals_transformers_generate_with_prefix_fn(beams):
    codes, model, trie, prompts, input_ids, mask = _world(2)
    ours_items, ours_scores = beam_search(model, input_ids, trie, num_beams=beams, attention_mask=mask)
    out = model.generate(input_ids, attention_mask=mask, num_beams=beams, num_return_sequences=beams,
                         prefix_allowed_tokens_fn=prefix_allowed_tokens_fn(trie, input_ids.shape[1]),
                         length_penalty=0.0, max_new_tokens=4, do_sample=False, early_stopping=True,
                         pad_token_id=PAD, eos_token_id=EOS, output_scores=True, return_dict_in_generate=True)
    generated = out.sequences[:, input_ids.shape[1] :].reshape(len(prompts), beams, -1)
    code_of = {tuple(TOKEN_IDS[lvl][c].item() for lvl, c in enumerate(row)): i for i, row in enumerate(codes)}
    theirs = [[code_of[tuple(seq[:3].tolist())] for seq in user] for user in generated]
    assert ours_items.tolist() == theirs
    torch.testing.assert_close(ours_scores, out.sequences_scores.reshape(len(prompts), beams), atol=1e-4, rtol=0)


@pytest.mark.parametrize("seed", [0, 3, 4])
def test_exact_topk_equals_brute_force(seed):
    codes, model, trie, prompts, input_ids, mask = _world(seed)
    items, scores = exact_topk(model, input_ids, trie, k=7, attention_mask=mask, expand_per_step=4)
    for row, prompt in enumerate(prompts):
        reference = _brute_force(model, prompt, codes)
        best = torch.topk(reference, 7)
        assert items[row].tolist() == best.indices.tolist()
        torch.testing.assert_close(scores[row], best.values, atol=1e-5, rtol=0)


def test_exact_topk_without_eos_and_with_exclusion():
    codes, model, trie, prompts, input_ids, mask = _world(5)
    banned = [[0, 1, 2], [], [5]]
    items, scores = exact_topk(model, input_ids, trie, k=5, attention_mask=mask, exclude=banned, include_eos=False)
    for row, prompt in enumerate(prompts):
        reference = _brute_force(model, prompt, codes, include_eos=False)
        reference[banned[row]] = float("-inf")
        assert items[row].tolist() == torch.topk(reference, 5).indices.tolist()


def test_every_result_is_a_real_item_and_exclusions_hold():
    codes, model, trie, prompts, input_ids, mask = _world(6)
    history = [[3, 4, 5], [7], []]
    items, _ = beam_search(model, input_ids, trie, num_beams=10, attention_mask=mask, exclude=history)
    assert ((items >= 0) & (items < len(codes))).all()
    for row, seen in enumerate(history):
        assert not set(items[row].tolist()) & set(seen)
        assert len(set(items[row].tolist())) == 10


def test_candidate_subset_and_sampling():
    codes, model, trie, prompts, input_ids, mask = _world(7)
    subset = np.array([2, 9, 11, 30, 31])
    small = trie.restrict(subset)
    items, _ = beam_search(model, input_ids, small, num_beams=10, attention_mask=mask)
    assert set(items[items >= 0].tolist()) <= set(subset.tolist()) and (items[:, :5] >= 0).all()
    assert (items[:, 5:] == -1).all()  # fewer candidates than beams: padded
    a, _ = beam_search(model, input_ids, trie, num_beams=6, attention_mask=mask, do_sample=True, seed=1)
    b, _ = beam_search(model, input_ids, trie, num_beams=6, attention_mask=mask, do_sample=True, seed=1)
    assert torch.equal(a, b) and ((a >= 0) & (a < len(codes))).all()


def test_dense_and_csr_tables_agree_and_round_trip():
    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, [16, 16, 8], size=(600, 3)), axis=0)
    dense = CodeTrie(codes, [16, 16, 8], [torch.arange(16)] * 2 + [torch.arange(8)], dense_factor=10**6)
    sparse = CodeTrie(codes, [16, 16, 8], [torch.arange(16)] * 2 + [torch.arange(8)], dense_factor=0, dense_min=0)
    assert all(level.dense is None for level in sparse.levels) and all(lv.dense is not None for lv in dense.levels)
    for a, b in zip(dense.levels, sparse.levels):
        nodes = torch.arange(a.dense.shape[0])
        assert torch.equal(a.children(nodes), b.children(nodes))
    assert (sparse.codes_table() == codes).all() and (dense.codes_table() == codes).all()


def test_plugs_into_generate_as_custom_generate():
    codes, model, trie, prompts, input_ids, mask = _world(8)
    items, scores = model.generate(input_ids, attention_mask=mask, num_beams=5, custom_generate=constrained_generate,
                                   trie=trie)
    direct, _ = beam_search(model, input_ids, trie, num_beams=5, attention_mask=mask)
    assert torch.equal(items, direct)
