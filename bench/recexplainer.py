"""RecExplainer B, I and H side by side: each aligned with the same saved recommender on the same users, then
a few explanations from each as they come out.

    genrec baseline train --method sasrec --data runs/ctr/data --out runs/rex/sasrec
    python bench/recexplainer.py --data runs/ctr/data --target runs/rex/sasrec --runs runs/rex \
        --json bench/results/recexplainer_ml-100k.json

Each variant is one `genrec baseline recexplainer` process (its time and peak memory are its own), run with
SETTINGS; the examples are `genrec explain` on held-out users: the recommender's top item for them and one
from its bottom half. A variant already in the JSON file is skipped (pass --again to redo it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

VARIANTS = ("B", "I", "H")
# 2 CPU cores: SmolLM2-135M with LoRA takes 15-20 s per step of 8 rows
SETTINGS = ("--train-users 300 --eval-users 30 tasks.shown_history=5 tasks.item_rows=400 train.max_steps=40 "
            "train.warmup=5 train.learning_rate=0.001 eval.history_users=5")
EXAMPLES = 2  # held-out users explained per variant, each for a recommended and a not-recommended item


def examples(data: str, target: str, count: int, seed: int = 0) -> list[tuple[list[str], str, str]]:
    """(history ids, item id, what it is) for `count` held-out users: the target's top item and a bottom one."""
    from baselines.methods import load
    from genrec.data import RecDataset, leave_one_out

    dataset = RecDataset.load(data)
    split, model = leave_one_out(dataset), load(target)
    ids = list(dataset.items["item_id"])
    rng = np.random.default_rng(seed)
    out = []
    for user in rng.choice(len(split.train), count, replace=False):
        history = split.train[user][-5:]
        seen = set(history.tolist())
        order = [i for i in np.argsort(-model.score_items([history])[0]) if i not in seen]
        out.append(([ids[i] for i in history], ids[order[0]], "its top item"))
        out.append(([ids[i] for i in history], ids[int(rng.choice(order[len(order) // 2 :]))], "from its bottom half"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--target", required=True, help="a saved recommender (genrec baseline train)")
    parser.add_argument("--runs", default="runs/rex")
    parser.add_argument("--json", default="bench/results/recexplainer_ml-100k.json")
    parser.add_argument("--settings", default=SETTINGS)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--again", action="store_true")
    args = parser.parse_args()
    path = Path(args.json)
    table = json.loads(path.read_text()) if path.is_file() else {}
    for variant in args.variants.split(","):
        if variant in table and not args.again:
            continue
        out = Path(args.runs) / f"recexplainer-{variant}"
        command = ["genrec", "baseline", "recexplainer", "--data", args.data, "--target", args.target, "--out",
                   str(out), "--variant", variant, "--overwrite", *args.settings.split()]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)
        result = json.loads((out / "results.json").read_text())
        result["command"] = " ".join(command)
        result["examples"] = []
        for history, item, kind in examples(args.data, args.target, EXAMPLES):
            shown = subprocess.run(["genrec", "explain", "--model", str(out), "--history", ",".join(history),
                                    "--item", item], check=True, capture_output=True, text=True).stdout
            result["examples"].append({"history": history, "item": item, "kind": kind, "output": shown.strip()})
        table[variant] = result
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=2))
    print(markdown(table))
    plot(table, path.with_suffix(".png"))


METRICS = ("next_hr@5", "next_ndcg@5", "rank_ndcg", "classify_accuracy", "history_coverage")


def markdown(table: dict) -> str:
    lines = [f"| variant | {' | '.join(METRICS)} | train rows | steps | train s | eval s | peak MB |",
             "|---" * (len(METRICS) + 6) + "|"]
    for variant, r in table.items():
        cells = [f"{r['alignment'][m]:.4f}" if m in r["alignment"] else "-" for m in METRICS]
        lines.append(f"| {variant} | {' | '.join(cells)} | {r['train_rows']} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} | {r['eval_seconds']:.0f} | {r['peak_rss_mb']} |")
    return "\n".join(lines)


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(1, len(table))
    for n, (variant, r) in enumerate(table.items()):
        values = [r["alignment"].get(m, 0.0) for m in METRICS]
        ax.bar(np.arange(len(METRICS)) + n * width, values, width, label=variant)
    ax.set_xticks(np.arange(len(METRICS)) + width * (len(table) - 1) / 2, METRICS, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_title("alignment with the recommender, held-out users")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
