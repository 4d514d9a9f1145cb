"""Semantic IDs for a large catalogue from cached embeddings: time and peak memory per quantizer.

    python bench/codebook_scale.py [--items 1000000] [--dim 384] [--quantizers opq,rqkmeans]
                                   [--rotation-iters 10] [--json bench/results/codebook_scale.json]

The embeddings are synthetic (a seeded mixture of Gaussians, as clustered as text embeddings are), so the
benchmark needs no data. Each quantizer runs in its own process through the real `build_codebook` (fit on a
sample of `codebook.train_items`, assignment of every item, the uniqueness step), so its peak memory is its
own. Goal: at most 10 minutes and 8 GB on 2 CPU cores for a million items.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time

import numpy as np
import pandas as pd

LEVELS = {"opq": (256,) * 32, "rqkmeans": (256, 256, 256), "rqvae": (256, 256, 256)}


def embeddings(items: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1024, dim)).astype(np.float32)
    out = centres[rng.integers(0, len(centres), size=items)]
    out += 0.5 * rng.standard_normal(size=out.shape, dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def run(kind: str, items: int, dim: int, rotation_iters: int, queue) -> None:
    from genrec.data import RecDataset
    from semid.codebook import CodebookConfig, build_codebook

    vectors = embeddings(items, dim)
    ids = [f"i{i}" for i in range(items)]  # every item in one user's five-item sequence, so none is dropped
    dataset = RecDataset.from_records(None, pd.DataFrame({"user_id": [f"u{i // 5}" for i in range(items)],
                                                          "item_id": ids}), "scale")
    start = time.perf_counter()
    cfg = CodebookConfig(quantizer=kind, levels=LEVELS[kind], rotation_iters=rotation_iters)
    tokenizer, stats = build_codebook(dataset, cfg, embeddings=vectors)
    seconds = time.perf_counter() - start
    unique = len(np.unique(tokenizer.codes, axis=0)) == items
    queue.put({"quantizer": kind, "items": items, "rotation_iters": rotation_iters if kind == "opq" else None,
               "positions": tokenizer.num_levels, "seconds": round(seconds, 1),
               "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
               "unique": unique, "collision_rate_before": round(stats["collision_rate_before"], 5),
               "items_moved": stats["items_moved"], "extra_level": stats["extra_level"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--quantizers", default="opq,rqkmeans")
    parser.add_argument("--rotation-iters", type=int, default=10, help="opq: rounds of learning the rotation")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    context = multiprocessing.get_context("spawn")
    for kind in args.quantizers.split(","):
        queue = context.Queue()
        process = context.Process(target=run, args=(kind, args.items, args.dim, args.rotation_iters, queue))
        process.start()
        results.append(queue.get())
        process.join()
        print(json.dumps(results[-1]))
    print("| quantizer | items | positions | seconds | peak memory (GB) | unique | colliding before |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['quantizer']} | {r['items']:,} | {r['positions']} | {r['seconds']} | {r['peak_rss_gb']} | "
              f"{r['unique']} | {r['collision_rate_before']:.2%} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
