"""`genrec demo` / `make demo`: the pipeline on the embedded synthetic dataset, with a readable report.

Build the dataset and show its statistics; build the item codebook (semantic IDs) and show items that
share a first code; build the SFT data; finetune a small from-scratch LM on it; rank the full catalogue for
every test user with it, with popularity, a first-order Markov chain and SASRec; show a few users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from baselines.markov import MarkovRecommender
from baselines.sequential import SequentialConfig, SequentialRecommender
from semid.codebook import CodebookConfig, build_codebook, plot_usage
from tasks import TaskConfig, build_sft, save_sft, summary

from .data import SyntheticConfig, dataset_stats, format_stats, leave_one_out, make_synthetic
from .evaluate import PopularityRecommender, metrics_table, ranking_metrics
from .finetune import FinetuneConfig, finetune
from .model import BackboneConfig, GenRecModel, ScratchConfig

DEMO_BACKBONE = ScratchConfig(layers=2, hidden=128, heads=4, kv_heads=4, intermediate=384)
# In a run this short, next-item rows plus the text <-> code tasks do as well as next-item rows alone, and
# far better than the full mix, whose fusion and search rows share the few steps (see README).
DEMO_TASKS = ("seqrec", "item2index", "index2item")


def run_demo(out: str | Path, seed: int = 0, examples: int = 3, train_steps: int = 1000,
             users: int = 3000, sasrec_epochs: int = 40) -> dict[str, dict[str, float]]:
    out = Path(out)
    dataset = make_synthetic(SyntheticConfig(users=users, seed=seed))
    dataset.save(out / "data")
    print("== data: embedded synthetic shop (not real data) ==")
    print(format_stats(dataset_stats(dataset)))

    print("\n== step 1: item codebook (RQ-VAE over all-MiniLM-L6-v2 embeddings of item text) ==")
    tokenizer, stats = build_codebook(dataset, CodebookConfig(levels=(32, 32, 32), seed=seed),
                                      cache_dir=out / "embeddings")
    tokenizer.save_pretrained(out / "semid")
    plot_usage(tokenizer.codes, tokenizer.level_sizes, out / "semid" / "code_usage.png")
    print(f"{stats['items']} items -> {stats['unique_codes']} unique semantic IDs; collisions "
          f"{stats['collision_rate_before']:.1%} from the quantizer, {stats['collision_rate']:.1%} after resolution; "
          f"code usage per level " + ", ".join(f"{u:.0%}" for u in stats["level_usage"]))
    titles = dataset.titles()
    for code in tokenizer.codes[:2, 0]:
        group = np.flatnonzero(tokenizer.codes[:, 0] == code)[:4]
        print(f"items whose ID starts with {tokenizer.token(0, int(code))}:")
        for item in group:
            print(f"  {tokenizer.item_to_tokens(item)}  {titles[item]}")

    print("\n== SFT data: LC-Rec's task family over the semantic IDs ==")
    cfg = TaskConfig(tasks=DEMO_TASKS, seed=seed)
    sft = build_sft(dataset, tokenizer, cfg)
    save_sft(sft, out / "sft", cfg, tokenizer)
    print(", ".join(f"{task} {n:,}" for task, n in summary(sft)["train"].items()) + " training rows; "
          f"{sft['valid'].num_rows:,} validation and {sft['test'].num_rows:,} test rows")
    example = sft["test"][0]
    print(f"  prompt:     {example['prompt']}\n  completion: {example['completion']}")

    print(f"\n== step 2: finetune a small LLaMA-style model from scratch ({train_steps} steps) ==")
    finetune(FinetuneConfig(data=str(out / "data"), semid=str(out / "semid"), sft=str(out / "sft"),
                            out=str(out / "model"), backbone=BackboneConfig(scratch=DEMO_BACKBONE),
                            max_steps=train_steps, learning_rate=0.002, batch_size=64, max_length=160,
                            eval_steps=max(train_steps // 2, 1), eval_users=300, logging_steps=50, seed=seed))
    genrec = GenRecModel.from_pretrained(out / "model")

    print("\n== steps 3 and 4: constrained beam search (20 beams) for every test user; Recall / NDCG ==")
    split = leave_one_out(dataset)
    print(f"(training SASRec for comparison, up to {sasrec_epochs} epochs)")
    sasrec = SequentialRecommender(dataset.num_items, SequentialConfig(epochs=sasrec_epochs, seed=seed))
    sasrec.fit(split)
    models = {"popularity": PopularityRecommender(split.train, dataset.num_items),
              "markov chain": MarkovRecommender(split.train, dataset.num_items),
              "sasrec (full softmax)": sasrec,
              "genrec (semantic IDs + LM)": genrec}
    results = {name: ranking_metrics(m.recommend(split.test.histories, 20), split.test.targets)
               for name, m in models.items()}
    print(f"\n== test: leave-one-out, full ranking over {dataset.num_items} items, {len(split.test)} users ==")
    table = metrics_table(results)
    print(table)
    (out / "results").mkdir(parents=True, exist_ok=True)
    (out / "results" / "metrics.md").write_text(table + "\n")

    top = genrec.recommend(split.test.histories[:examples], 5)
    for user, history, target, recs in zip(split.test.users, split.test.histories, split.test.targets, top):
        print(f"\nuser {dataset.users['user_id'][user]} (genrec's top 5)")
        print("  recent history: " + " | ".join(titles[i] for i in history[-3:]))
        print("  next (held out): " + titles[target])
        for rank, item in enumerate(recs, start=1):
            print(f"  {rank}. {titles[item]}{'   <- hit' if item == target else ''}")
    return results
