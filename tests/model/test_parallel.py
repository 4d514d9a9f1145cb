"""The parallel semantic-ID head: exact scoring against brute force, beam search, item inputs, training."""

import json

import numpy as np
import pytest
import torch

from genrec.config import load_config
from genrec.decode import CodeTrie
from genrec.finetune import FinetuneConfig, finetune
from genrec.model import HEAD_FILE, BackboneConfig, GenRecModel
from genrec.parallel import CodeSum, code_onehot, dense_topk, item_scores, transpose_csr, trie_beam_search

TINY = {"scratch": {"layers": 1, "hidden": 32, "heads": 2, "kv_heads": 2, "intermediate": 64, "dropout": 0.1}}


def _random_world(seed=0, items=50, levels=(4, 5, 3)):
    rng = np.random.default_rng(seed)
    codes = np.unique(np.stack([rng.integers(0, k, size=4 * items) for k in levels], 1), axis=0)[:items]
    codes = codes[rng.permutation(len(codes))]
    noise = torch.randn(7, len(levels), max(levels), generator=torch.Generator().manual_seed(seed))
    logp = torch.log_softmax(noise, -1)
    for position, size in enumerate(levels):
        logp[:, position, size:] = float("-inf")
    return torch.from_numpy(codes), logp


def _brute_force(logp, codes, k, exclude=None, candidates=None):
    """Every item scored one at a time in plain Python, sorted by (score desc, item id asc)."""
    out = []
    pool = range(len(codes)) if candidates is None else candidates
    for user in range(logp.shape[0]):
        scored = []
        for item in pool:
            if exclude is not None and item in set(exclude[user].tolist()):
                continue
            scored.append((sum(float(logp[user, p, int(codes[item, p])]) for p in range(codes.shape[1])), item))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        out.append(scored[:k])
    return out


def _check(top, scores, reference):
    for row, ref in enumerate(reference):
        assert top[row, : len(ref)].tolist() == [item for _, item in ref]
        np.testing.assert_allclose(scores[row, : len(ref)].numpy(), [s for s, _ in ref], atol=1e-5)


def test_exact_topk_equals_brute_force_scoring_of_every_item():
    codes, logp = _random_world()
    exclude = [np.array([0, 5, 9]), np.array([], dtype=np.int64), *[np.array([i]) for i in range(5)]]
    candidates = np.array([3, 7, 11, 20, 21, 40, 41, 49])
    both = {"exclude": exclude, "candidates": candidates}
    for kwargs in ({}, {"exclude": exclude}, {"candidates": candidates}, both):
        top, scores = dense_topk(logp, codes, 10, **kwargs)
        _check(top, scores, _brute_force(logp, codes, 10, **kwargs))
    full = item_scores(logp, codes)
    assert full.shape == (7, len(codes))
    assert torch.allclose(full[2, 4], sum(logp[2, p, codes[4, p]] for p in range(3)))


def test_trie_beam_search_is_exact_at_beams_of_the_catalogue_and_close_below():
    codes, logp = _random_world(seed=1)
    trie = CodeTrie(codes.numpy(), [4, 5, 3], [torch.arange(4), torch.arange(5), torch.arange(3)])
    exclude = [np.array([i, i + 1]) for i in range(7)]
    for skip in (None, exclude):
        exact = dense_topk(logp, codes, 10, skip)
        beam = trie_beam_search(logp, trie, len(codes), 10, skip)
        assert torch.equal(beam[0], exact[0])
        assert torch.allclose(beam[1], exact[1], atol=1e-5)
    narrow_items, narrow_scores = trie_beam_search(logp, trie, 2, 5)  # k=5 beams: an approximation
    assert ((narrow_items >= 0) & (narrow_items < len(codes))).all()  # always k real items
    best = dense_topk(logp, codes, 5)[1]
    assert (narrow_scores <= best + 1e-5).all()  # never above the exact ranking, rank by rank


def _model(world, reduce="mean"):
    backbone = BackboneConfig(scratch=TINY["scratch"])
    return GenRecModel.create(backbone, world["semid"], head="parallel", item_inputs=reduce)


def test_item_inputs_are_the_mean_or_sum_of_the_code_rows(world):
    for reduce in ("mean", "sum"):
        model = _model(world, reduce)
        net = model.net()
        items = torch.tensor([[3, 7, -1], [0, 1, 2]])
        got = net.item_inputs(items)
        table = model.model.get_input_embeddings().weight
        for row, col in ((0, 0), (0, 1), (1, 2)):
            ids = model.tokenizer.convert_tokens_to_ids(
                [world["semid"].token(p, c) for p, c in enumerate(world["semid"].codes[int(items[row, col])])])
            rows = table[ids]
            expected = rows.mean(0) if reduce == "mean" else rows.sum(0)
            assert torch.allclose(got[row, col], expected, atol=1e-6)


def test_the_loss_is_the_mean_code_cross_entropy_at_every_target(world):
    model = _model(world)
    net = model.net().eval()
    items, targets = torch.tensor([[3, 7, 9], [4, 5, -1]]), torch.tensor([[7, 9, 2], [5, 8, -1]])
    loss = net(items, targets)["loss"]
    states = net.encode(items)
    logp = net.log_probs(states.reshape(-1, states.shape[-1])).reshape(2, 3, *net.log_probs(states[0]).shape[1:])
    terms = [-logp[r, c, p, world["semid"].codes[int(targets[r, c]), p]]
             for r in range(2) for c in range(3) if targets[r, c] >= 0 for p in range(world["semid"].num_levels)]
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-5)
    right_padded = net.encode(torch.tensor([[4, 5, -1]]))[0, :2]  # padding after a sequence changes nothing
    assert torch.allclose(right_padded, net.encode(torch.tensor([[4, 5]]))[0], atol=1e-5)
    left_padded = net.encode(torch.tensor([[-1, 4, 5]]))[0, 1:]  # nor before it (positions follow the items)
    assert torch.allclose(left_padded, net.encode(torch.tensor([[4, 5]]))[0], atol=1e-5)


def test_the_item_loss_is_the_cross_entropy_over_every_item_scored_by_its_codes(world):
    model = _model(world)
    net = model.net().eval()
    net.loss = "items"
    items, targets = torch.tensor([[3, 7, 9], [4, 5, -1]]), torch.tensor([[7, 9, 2], [5, 8, -1]])
    loss = net(items, targets)["loss"]
    states = net.encode(items)
    codes = world["semid"].codes
    terms = []
    for r, c in [(r, c) for r in range(2) for c in range(3) if targets[r, c] >= 0]:
        logp = net.log_probs(states[r, c][None])[0]  # the ranking's scores: a per-user shift of the code logits
        scores = torch.stack([sum(logp[p, int(codes[i, p])] for p in range(codes.shape[1])) for i in range(len(codes))])
        terms.append(-torch.log_softmax(scores, 0)[targets[r, c]])
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-4)


def test_the_sparse_item_sum_has_the_gathers_gradient():
    codes, _ = _random_world(seed=2)
    x = torch.randn(5, 3, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(5, len(codes), dtype=torch.float64)
    gathered = sum(x[:, p, codes[:, p]] for p in range(3))
    onehot = code_onehot(codes, 5).to(torch.float64)
    summed = CodeSum.apply(x.reshape(5, -1), onehot, transpose_csr(onehot))
    assert torch.allclose(summed, gathered)
    expected = torch.autograd.grad((gathered * weights).sum(), x)[0]
    assert torch.allclose(torch.autograd.grad((summed * weights).sum(), x)[0], expected)


def _config(world, out, **extra):
    root = world["root"]
    raw = {"data": str(root / "data"), "semid": str(root / "semid"), "sft": str(root / "sft"), "out": str(out),
           "backbone": TINY, "max_steps": 24, "batch_size": 16, "eval_steps": 8, "eval_users": 50,
           "logging_steps": 2, "learning_rate": 0.005, "head": "parallel", **extra}
    return load_config(FinetuneConfig, None, [f"{k}={json.dumps(v)}" for k, v in raw.items()])


def test_parallel_finetune_learns_saves_and_reloads_the_same_ranking(world, tmp_path):
    summary = finetune(_config(world, tmp_path / "m"))
    assert summary["steps"] == 24
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]
    info = json.loads((tmp_path / "m" / "genrec.json").read_text())
    assert info["head"] == "parallel" and info["item_inputs"] == "mean" and (tmp_path / "m" / HEAD_FILE).is_file()
    model = GenRecModel.from_pretrained(tmp_path / "m")
    histories = [s[:4] for s in world["dataset"].sequences()[:6]]
    items, scores = model.recommend_scored(histories, k=8)
    assert ((items >= 0) & (items < world["semid"].num_items)).all()
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    full = model.score_items(histories)
    best = np.argsort(-full, axis=1, kind="stable")[:, :8]
    assert np.array_equal(best, items)
    again = GenRecModel.from_pretrained(tmp_path / "m").recommend(histories, k=8)
    assert np.array_equal(again, items)
    excluded = model.recommend(histories, k=8, exclude_history=True)
    assert not any(set(row) & set(h.tolist()) for row, h in zip(excluded, histories))
    beams = model.recommend(histories, k=8, exact=False, beams=world["semid"].num_items)
    assert np.array_equal(beams, items)


def test_the_item_loss_trains_and_is_recorded(world, tmp_path):
    finetune(_config(world, tmp_path / "m", parallel_loss="items"))
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]
    assert GenRecModel.from_pretrained(tmp_path / "m").net().loss == "items"
    with pytest.raises(Exception, match="parallel_loss"):
        _config(world, tmp_path / "n", parallel_loss="both")


def test_length_grouped_batches_hold_windows_of_similar_length(world, tmp_path, monkeypatch):
    import genrec.train_parallel as train_parallel

    collate, spreads = train_parallel.collate_windows, {}
    for grouped in (False, True):
        seen = spreads.setdefault(grouped, [])

        def recording(rows, seen=seen):
            seen.append(max(len(r) for r in rows) - min(len(r) for r in rows))
            return collate(rows)

        monkeypatch.setattr(train_parallel, "collate_windows", recording)
        finetune(_config(world, tmp_path / str(grouped), max_steps=8, eval_steps=8, group_by_length=grouped))
        monkeypatch.undo()
    assert np.mean(spreads[True]) < np.mean(spreads[False]) / 2
    with pytest.raises(Exception, match="group_by_length"):
        FinetuneConfig(head="autoregressive", group_by_length=True)


def test_a_damaged_parallel_head_is_refused(world, tmp_path):
    finetune(_config(world, tmp_path / "m", max_steps=8))
    (tmp_path / "m" / HEAD_FILE).write_bytes(b"not safetensors")
    with pytest.raises(Exception, match="weights cannot be loaded"):
        GenRecModel.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / HEAD_FILE).unlink()
    with pytest.raises(Exception, match=HEAD_FILE):
        GenRecModel.from_pretrained(tmp_path / "m")


def test_lora_parallel_trains_code_rows_and_reloads_the_same_ranking(world, tmp_path):
    from tests.tiny_lm import save_tiny_lm

    base = save_tiny_lm(tmp_path / "base", ["the", "user", "bought"], tied=True)
    cfg = _config(world, tmp_path / "m", backbone={"name": base, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
                  max_steps=8)
    finetune(cfg)
    model = GenRecModel.from_pretrained(tmp_path / "m")
    assert model.is_peft and model.head is not None
    trained = [n for n, p in model.model.named_parameters() if "trainable_tokens" in n]
    assert trained  # the code rows are trained through peft, the other rows stay frozen
    histories = [s[:3] for s in world["dataset"].sequences()[:5]]
    first = model.recommend_scored(histories, k=6)
    again = GenRecModel.from_pretrained(tmp_path / "m").recommend_scored(histories, k=6)
    assert np.array_equal(first[0], again[0]) and np.allclose(first[1], again[1], atol=1e-5)
