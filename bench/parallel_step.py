"""Where a training step of the parallel head goes, per loss, and what length-grouped batches save.

    python bench/parallel_step.py --model runs/beauty-parallel-cpu/model --data runs/beauty-parallel-cpu/data \
        --json bench/results/parallel_step_beauty.json

Times forward + backward of one batch (the median of `--repeats`) for `parallel_loss` codes and items, split into
the decoder (item inputs -> hidden states), the head (blocks and code logits) and, for items, the sparse sums
over every item's codes; then whole steps on random batches against length-grouped ones. Also the exact
ranking of every validation user, and the gather per position it replaced, for the same users.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn
from transformers.trainer_pt_utils import LengthGroupedSampler

from genrec.data import RecDataset, leave_one_out
from genrec.model import GenRecModel
from genrec.train_parallel import ItemWindows, collate_windows


def timed(fn, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def gather_sums(logp: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The reference the sparse product replaced: one gather per code position."""
    scores = logp[:, 0, codes[:, 0]]
    for position in range(1, codes.shape[1]):
        scores = scores + logp[:, position, codes[:, position]]
    return scores


def stepper(net, batches: list[dict]):
    """A function that runs forward + backward on the next of `batches` (cycling)."""
    it = iter(batches * 2)
    return lambda: net(**next(it))["loss"].backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = GenRecModel.from_pretrained(args.model)
    split = leave_one_out(RecDataset.load(args.data), model.max_history)
    rows = ItemWindows(split.train, model.max_history)
    net = model.net().train()
    rng = np.random.default_rng(0)
    random_batch = collate_windows([rows[i] for i in rng.choice(len(rows), args.batch_size, replace=False)])
    keep = random_batch["targets"] >= 0
    out = {"items": int(net.num_items), "windows": len(rows), "batch": args.batch_size, "targets": int(keep.sum())}

    def decoder():
        net.encode(random_batch["items"])[keep].sum().backward()

    states = net.encode(random_batch["items"])[keep].detach().requires_grad_()
    wanted = random_batch["targets"][keep]

    def head_codes():
        logp = net.log_probs(states)
        (-logp.gather(-1, net.codes[wanted][..., None]).mean()).backward()

    def head_logits():
        net.code_logits(states).sum().backward()

    per_code = net.code_logits(states).detach().requires_grad_()

    def sparse_sums():
        nn.functional.cross_entropy(net.item_sums(per_code), wanted).backward()

    out["seconds"] = {"decoder": timed(decoder, args.repeats), "head, codes loss": timed(head_codes, args.repeats),
                      "head logits (items loss)": timed(head_logits, args.repeats),
                      "sparse item sums + cross-entropy": timed(sparse_sums, args.repeats)}
    order = list(LengthGroupedSampler(args.batch_size, lengths=[len(r) for r in rows.rows]))
    grouped = [collate_windows([rows[i] for i in order[s : s + args.batch_size]])
               for s in range(0, args.repeats * 8 * args.batch_size, 8 * args.batch_size)]
    randoms = [collate_windows([rows[i] for i in rng.choice(len(rows), args.batch_size, replace=False)])
               for _ in range(args.repeats)]
    for loss in ("codes", "items"):
        net.loss = loss
        for name, batches in (("random", randoms), ("length-grouped", grouped)):
            out["seconds"][f"step, {loss} loss, {name} batches"] = timed(stepper(net, batches), args.repeats)
    histories = split.valid.histories
    start = time.perf_counter()
    model.recommend_items(histories, k=20)
    out["seconds"][f"exact ranking of {len(histories)} validation users"] = time.perf_counter() - start
    with torch.no_grad():
        logp = net.user_log_probs(histories[: out["targets"]], model.max_history)
        codes = net.codes
        out["seconds"][f"item sums of {len(logp)} users: sparse product"] = timed(
            lambda: net.item_sums(logp), args.repeats)
        out["seconds"][f"item sums of {len(logp)} users: gather per position"] = timed(
            lambda: gather_sums(logp, codes), args.repeats)
    for name, seconds in out["seconds"].items():
        print(f"{name:55s} {seconds:8.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
