"""`genrec run RECIPE` and `genrec demo` (the quickstart recipe through the same run, plus a report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data import RecDataset, dataset_stats, format_stats, leave_one_out
from ..evaluate import TABLE_KEYS, metrics_table
from ..pipeline import Run, RunConfig, training_line
from .codebook import summary as codebook_summary

__all__ = ["RunConfig", "run", "demo", "QUICKSTART"]

QUICKSTART = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"


def run(cfg: RunConfig) -> int:
    results = Run(cfg).run()
    print(_report(results, cfg.folder()))
    print(f"run folder: {cfg.folder()} (results/metrics.json, results/metrics.md, results/metrics.png)")
    return 0


def demo(cfg: RunConfig, examples: int = 3) -> int:
    """The run, then what it built: the data, the codebook, the SFT data, the metrics, a few users."""
    results = Run(cfg).run()
    root = cfg.folder()
    dataset = RecDataset.load(root / "data")
    print("\n== data ==")
    print(format_stats(dataset_stats(dataset)))
    print("\n== step 1: item codebook ==")
    print(codebook_summary(json.loads((root / "semid" / "stats.json").read_text())))
    rows = json.loads((root / "sft" / "tasks.json").read_text())["rows"]
    print("\n== SFT data ==")
    print(", ".join(f"{task} {n:,}" for task, n in rows["train"].items()) + " training rows; "
          f"{sum(rows['valid'].values()):,} validation and {sum(rows['test'].values()):,} test rows")
    split_name = cfg.evaluate.split
    print(f"\n== steps 3 and 4: {split_name} split, full ranking over {dataset.num_items:,} items ==")
    print(_report(results, root))
    show_users(cfg, dataset, examples)
    print(f"\nrun folder: {root} (results/metrics.md, results/metrics.png, model/train_curves.png)")
    return 0


def _report(results: dict, root: Path) -> str:
    """The metrics table and the training line, as results/metrics.md holds them."""
    timings = json.loads((root / "results" / "timings.json").read_text())
    return f"{metrics_table(results, TABLE_KEYS)}\n\n{training_line(timings)}"


def show_users(cfg: RunConfig, dataset: RecDataset, count: int) -> None:
    """A few test users: their last items, the held-out one, and genrec's top 5 (hits marked)."""
    from ..model import GenRecModel

    model = GenRecModel.from_pretrained(cfg.folder() / "model")
    test = getattr(leave_one_out(dataset, cfg.tasks.max_history), cfg.evaluate.split)
    titles = dataset.titles()
    top = model.recommend(test.histories[:count], 5, beams=cfg.evaluate.beams)
    for user, history, target, recs in zip(test.users, test.histories, test.targets, np.asarray(top)):
        print(f"\nuser {dataset.users['user_id'][user]} (genrec's top 5)")
        print("  recent history: " + " | ".join(titles[i] for i in history[-3:]))
        print("  next (held out): " + titles[target])
        for rank, item in enumerate(recs, start=1):
            print(f"  {rank}. {titles[item]}{'   <- hit' if item == target else ''}")
