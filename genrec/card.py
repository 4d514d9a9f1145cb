"""Hugging Face model cards for saved genrec models: what the Hub shows, and what a reader of the folder needs."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

KEYS = ("recall@5", "recall@10", "ndcg@5", "ndcg@10")


def write_model_card(folder: str | Path, metrics: dict | None = None, command: str | None = None) -> None:
    """README.md of a saved model folder, from its genrec.json and semid/config.json (and run metrics)."""
    folder = Path(folder)
    info = json.loads((folder / "genrec.json").read_text())
    semid_info = json.loads((folder / "semid" / "config.json").read_text())
    (folder / "README.md").write_text(model_card(info, semid_info, metrics, command))


def model_card(info: dict, semid_info: dict, metrics: dict | None = None, command: str | None = None) -> str:
    """README.md text: YAML metadata (library_name, base_model, datasets, tags), then the model's facts."""
    backbone = info.get("backbone", {})
    base = backbone.get("name")
    dataset = info.get("dataset")
    meta = ["---", "library_name: genrec", "pipeline_tag: text-generation",
            "tags: [recommendation, generative-recommendation, semantic-ids]"]
    meta += [f"base_model: {base}"] if base else []
    meta += [f"datasets: [{dataset}]"] if dataset else []
    meta.append("---")
    scratch = backbone.get("scratch") or {}
    model_line = (f"{base} finetuned with {'LoRA' if info.get('peft') else 'all weights trained'}" if base else
                  f"a {scratch.get('arch', 'llama')} model trained from scratch ({scratch.get('layers')} layers, width "
                  f"{scratch.get('hidden')})")
    levels = semid_info.get("level_sizes", [])
    lines = [*meta, "", "# genrec model", "",
             "A generative recommender: a causal LM that recommends items by generating their semantic IDs, "
             "constrained to the catalogue. Load it with `GenRecModel.from_pretrained(folder)` or serve it with "
             "`genrec serve --model FOLDER`.", "",
             f"- Model: {model_line}.",
             f"- Dataset: {dataset or 'not recorded'}.",
             f"- Codebook: {semid_info.get('num_items', '?'):,} items, {len(levels)} codes per item "
             f"({' x '.join(map(str, levels))}), unique per item; quantizer "
             f"{semid_info.get('quantizer', {}).get('kind', semid_info.get('source', 'unknown'))}."]
    validation = info.get("validation") or {}
    if "eval_ndcg@10" in validation:
        lines.append(f"- Validation (the kept checkpoint): NDCG@10 {validation['eval_ndcg@10']:.4f}, Recall@10 "
                     f"{validation.get('eval_recall@10', float('nan')):.4f}.")
    if metrics:
        keys = [k for k in KEYS if all(k in m for m in metrics.values())]
        lines += ["", f"## Results ({next(iter(metrics.values())).get('split', 'test')} split, leave-one-out, full "
                  "ranking)", "", "| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in keys) + " |" for name, m in metrics.items()]
    lines += ["", "## How it was made", "", "```bash", command or "genrec " + " ".join(map(shlex.quote, sys.argv[1:])),
              "```", ""]
    return "\n".join(lines)
