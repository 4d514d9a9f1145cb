"""Recommendation quality on the real datasets: genrec (from-scratch backbone) next to popularity, a Markov
chain and our full-softmax SASRec on the same leave-one-out split, and the published numbers.

    python bench/quality.py --datasets beauty --set finetune.max_steps=4000 [--json bench/results/quality.json]

Each dataset runs `genrec run recipes/<dataset>.yaml` in its own process (so its peak memory is its own) in
`runs/quality/<dataset>`; a finished stage is cached, so rerunning with more steps only redoes what changed.
Published numbers are the papers' (TIGER, LC-Rec, LETTER; leave-one-out, full ranking). Rows
from bench/results/baselines_<dataset>.json (bench/baseline_quality.py: the same split, the same evaluation) are
shown too, so a slow baseline is trained once and not again in every quality run (pass `baselines=[popularity]`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PUBLISHED = {  # dataset -> method (paper) -> metrics
    "beauty": {"SASRec (in TIGER)": {"recall@5": .0387, "ndcg@5": .0249, "recall@10": .0605, "ndcg@10": .0318},
               "TIGER": {"recall@5": .0454, "ndcg@5": .0321, "recall@10": .0648, "ndcg@10": .0384}},
    "sports": {"SASRec (in TIGER)": {"recall@5": .0233, "ndcg@5": .0154, "recall@10": .0350, "ndcg@10": .0192},
               "TIGER": {"recall@5": .0264, "ndcg@5": .0181, "recall@10": .0400, "ndcg@10": .0225}},
    "games": {"TIGER (in LC-Rec)": {"ndcg@10": .0501}, "LC-Rec, LLaMA-7B": {"ndcg@10": .0681}},
    "yelp": {"TIGER (in LETTER)": {"ndcg@10": .0213}, "LETTER-TIGER": {"ndcg@10": .0231}},
}
KEYS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")
RESULTS = Path("bench/results")


def run_dataset(name: str, overrides: list[str], runs: Path) -> dict:
    folder = runs / name
    command = [sys.executable, "-m", "genrec", "run", f"recipes/{name}.yaml", f"run_dir={folder}", *overrides]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    metrics = json.loads((folder / "results" / "metrics.json").read_text())
    for method, timing in json.loads((folder / "results" / "timings.json").read_text()).items():
        metrics[method].update(timing)
    stages = {stage: json.loads((folder / stage / "stage.json").read_text())
              for stage in ("data", "semid", "sft", "model")}
    data = json.loads((folder / "recipe.json").read_text())["data"]
    dataset = Path(data["path"]).name if data.get("path") else name  # yelp-letter-codes compares with yelp
    return {"metrics": metrics, "stages": stages, "command": " ".join(command[1:]), "dataset": dataset}


def own_baselines(name: str, shown: dict) -> dict:
    """Methods bench/baseline_quality.py measured on this dataset that the run itself did not train."""
    path = RESULTS / f"baselines_{name}.json"
    measured = json.loads(path.read_text()) if path.is_file() else {}
    return {f"{method} ({path.name})": metrics for method, metrics in measured.items() if method not in shown}


def table(results: dict) -> str:
    lines = ["| dataset | method | R@5 | N@5 | R@10 | N@10 | training | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        peak = f"{result['stages']['model'].get('peak_rss_mb', '?')} MB"
        shown, dataset = result["metrics"], result.get("dataset", name)
        for method, metrics in {**shown, **own_baselines(dataset, shown)}.items():
            cells = " | ".join(f"{metrics[k]:.4f}" for k in KEYS)
            seconds = metrics.get("train_seconds")
            took = f"{seconds / 60:.0f} min" if seconds else "-"
            lines.append(f"| {name} | {method} | {cells} | {took} | {peak if method == 'genrec' else ''} |")
        for method, metrics in PUBLISHED.get(dataset, {}).items():
            cells = " | ".join(f"{metrics[k]:.4f}" if k in metrics else "" for k in KEYS)
            lines.append(f"| {name} | {method} (published) | {cells} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="beauty,sports,games,yelp", help="recipe names under recipes/")
    parser.add_argument("--set", nargs="*", default=[], help="key=value overrides for every recipe")
    parser.add_argument("--runs", default="runs/quality")
    parser.add_argument("--json", default="bench/results/quality.json")
    args = parser.parse_args()
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.datasets.split(","):
        results[name] = run_dataset(name, args.set, Path(args.runs))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
