"""Every baseline on one real dataset: the same leave-one-out split, full ranking, test metrics and training time.

    python bench/baseline_quality.py --format movielens --path $GENREC_DATASETS/ml-100k \\
        --methods sasrec,bert4rec,gru4rec,llmesr,elephant-random,elephant-plm,elephant \\
        --json bench/results/baselines_ml-100k.json [--set epochs=100 tune.steps=200] [--save runs/baselines]

Results are added to the JSON file method by method, so an interrupted run keeps what it finished; methods
already in the file are skipped (delete the file, or pass --again, to redo them). NDCG@10 per method, overall
and by user / item group, is drawn next to the JSON file (`.png`); rerunning with nothing left to train redraws it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

from baselines.elephant import BehaviourTuneConfig
from baselines.knowledge import KnowledgeConfig
from baselines.methods import train
from genrec.config import apply_overrides, build
from genrec.data import leave_one_out, load_format
from genrec.evaluate import TABLE_KEYS, PopularityRecommender, evaluate, metrics_table, plot_groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--methods", default="sasrec,bert4rec,gru4rec,llmesr,elephant-random,elephant-plm,elephant")
    parser.add_argument("--set", nargs="*", default=[], help="key=value settings for every method")
    parser.add_argument("--cache", default="runs/bench-cache")
    parser.add_argument("--json", required=True)
    parser.add_argument("--again", action="store_true")
    parser.add_argument("--save", help="folder to keep each trained model in (<folder>/<method>), e.g. for "
                                       "collaborative codes from SASRec's item table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    dataset = load_format(args.format, args.path)
    split = leave_one_out(dataset)
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.is_file() and not args.again else {}
    if "popularity" not in results:
        results["popularity"] = evaluate(PopularityRecommender(split.train, dataset.num_items), dataset, splits=split)
    for method in args.methods.split(","):
        if method in results:
            continue
        started = time.perf_counter()
        settings = apply_overrides({}, args.set)
        tune = build(BehaviourTuneConfig, settings.pop("tune", {}), "tune")
        knowledge = build(KnowledgeConfig, settings.pop("knowledge", {}), "knowledge")
        model = train(method, dataset, split, settings, Path(args.cache) / dataset.name, tune, knowledge)
        seconds = time.perf_counter() - started
        if args.save:
            model.save_pretrained(Path(args.save) / method)
        results[method] = {**evaluate(model, dataset, splits=split), "train_seconds": round(seconds, 1),
                           "epochs": len(model.history), "peak_rss_mb": round(
                               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        if "alignment" in model.extra:  # the knowledge method: what each alignment round kept
            results[method]["alignment"] = model.extra["alignment"]
        print(f"{method}: {seconds / 60:.1f} min, test NDCG@10 {results[method]['ndcg@10']:.4f}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    title = f"{dataset.name}: {dataset.num_users:,} users, {dataset.num_items:,} items, test split, full ranking"
    plot_groups(results, out.with_suffix(".png"), title=title)
    print(title)
    print(metrics_table(results, TABLE_KEYS))
    print("training minutes: " + ", ".join(f"{m} {r['train_seconds'] / 60:.1f}" for m, r in results.items()
                                             if "train_seconds" in r))


if __name__ == "__main__":
    main()
