"""Every CTR method on one MovieLens dataset, each through `genrec baseline ctr` in its own process (so its
peak memory is its own), then one table and one plot.

    genrec data prepare --format movielens --path $GENREC_DATASETS/ml-100k --out runs/ctr/data
    python bench/ctr.py --data runs/ctr/data --runs runs/ctr --json bench/results/ctr_ml-100k.json

The language-model methods are run at the `--text-settings` below by default: on 2 CPU cores MiniLM takes
about 5 s per pretraining step of 64 rows, so pretraining and the joint finetuning see a seeded sample of the
training rows (validation and test are always complete). FLIP-ID and ClickPrompt-CTR reuse the pretraining of
FLIP and ClickPrompt and finetune on every training row, as DeepFM and DCNv2 do; `dcnv2-sample` is DCNv2
finetuned on the joint methods' sample, their control. A method already in the JSON file is skipped (pass
--again to redo it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ORDER = ("deepfm", "dcnv2", "clickprompt", "clickprompt-ctr", "flip", "flip-id", "dcnv2-sample")
REUSES = {"flip-id": "flip", "clickprompt-ctr": "clickprompt"}
JOINT_FINETUNE = "finetune.rows=8000 finetune.epochs=1 finetune.batch_size=32 finetune.evals_per_epoch=2"
TEXT_SETTINGS = f"pretrain.rows=8000 {JOINT_FINETUNE}"
# the control for the joint methods: the same ID model finetuned on the same sample, for the same steps
CONTROLS = {"dcnv2-sample": ("dcnv2", JOINT_FINETUNE)}
ID_MODEL = {method: "dcnv2" for method in ("dcnv2-sample", "flip", "flip-id", "clickprompt", "clickprompt-ctr")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a MovieLens dataset folder from `genrec data prepare`")
    parser.add_argument("--runs", required=True, help="where each method's output folder goes")
    parser.add_argument("--json", required=True)
    parser.add_argument("--methods", default=",".join(ORDER))
    parser.add_argument("--text-settings", default=TEXT_SETTINGS, help="key=value for flip and clickprompt")
    parser.add_argument("--again", action="store_true")
    args = parser.parse_args()
    path = Path(args.json)
    table = json.loads(path.read_text()) if path.exists() else {}
    for method in args.methods.split(","):
        if method in table and not args.again:
            continue
        out = Path(args.runs) / method
        base, settings = CONTROLS.get(method, (method, ""))
        command = ["genrec", "baseline", "ctr", "--method", base, "--data", args.data, "--out", str(out),
                   "--overwrite", *settings.split()]
        if method in REUSES:
            command += ["--pretrained", str(Path(args.runs) / REUSES[method])]
        elif method in ("flip", "clickprompt"):
            command += args.text_settings.split()
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True)
        result = json.loads((out / "results.json").read_text())
        pretrained = {} if method not in REUSES else json.loads((Path(args.runs) / REUSES[method] / "results.json")
                                                                 .read_text())
        table[method] = {"command": " ".join(command), "id_model": ID_MODEL.get(method, method),
                         "valid": result["valid"], "test": result["test"], "train_seconds": result["train_seconds"],
                         "pretrain_seconds_reused": pretrained.get("train_seconds"),
                         "peak_rss_mb": result["peak_rss_mb"], "rows": result["rows"]}
        path.write_text(json.dumps(table, indent=2))
    print(markdown(table))
    plot(table, path.with_suffix(".png"))


def markdown(table: dict) -> str:
    lines = ["| method | ID model | test AUC | test log loss | valid AUC | train s | peak MB |",
             "|---|---|---|---|---|---|---|"]
    for method, row in table.items():
        test = row["test"]
        lines.append(f"| {method} | {row['id_model']} | {test['auc']:.4f} | {test['logloss']:.4f} | "
                     f"{row['valid']['auc']:.4f} | {row['train_seconds']:.0f} | {row['peak_rss_mb']} |")
    return "\n".join(lines)


def plot(table: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric in zip(axes, ("auc", "logloss")):
        ax.bar(names, [table[n]["test"][metric] for n in names], color="tab:blue")
        values = [table[n]["test"][metric] for n in names]
        ax.set_ylim(min(values) - 0.02, max(values) + 0.01)
        ax.set_title(f"test {metric}")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
