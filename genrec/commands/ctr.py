"""`genrec baseline ctr`: a CTR method on a MovieLens dataset folder, with AUC / log loss on the chronological
validation and test rows, a results JSON and a plot of validation AUC by epoch."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from baselines.ctr.data import ctr_table
from baselines.ctr.train import CtrConfig, train_ctr

from ..atomic import atomic_file, check_output, mark
from ..data import RecDataset
from ..evaluate import ctr_metrics
from ..memory import peak_rss_mb


@dataclass
class CtrCommandConfig(CtrConfig):
    data: str = ""                 # a dataset folder from `genrec data prepare --format movielens`
    out: str = ""                  # where the model, results.json and auc.png go
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def ctr_command(cfg: CtrCommandConfig) -> int:
    out = mark(check_output(cfg.out, inputs=(cfg.data, cfg.pretrained), overwrite=cfg.overwrite))
    splits = ctr_table(RecDataset.load(cfg.data), cfg.fields).split()
    settings = CtrConfig(**{f.name: getattr(cfg, f.name) for f in fields(CtrConfig)})
    started = time.perf_counter()
    model = train_ctr(settings, splits, out)
    seconds = time.perf_counter() - started
    results = {"method": cfg.method, "data": cfg.data, "rows": {k: len(v) for k, v in splits.items()},
                "positive_share": {k: round(float(v.labels.mean()), 4) for k, v in splits.items()},
                "valid": model.extra.pop("valid"),
                "test": ctr_metrics(splits["test"].labels, model.predict(splits["test"])),
                "train_seconds": round(seconds, 1),
                "peak_rss_mb": peak_rss_mb()}
    model.extra.update(results)
    model.save_pretrained(out)
    with atomic_file(out / "results.json") as f:
        f.write(json.dumps({**results, "history": model.history}, indent=2))
    plot_auc(model.history["finetune"], out / "auc.png", cfg.method)
    test, valid = results["test"], results["valid"]
    print(f"{cfg.method}: test AUC {test['auc']:.4f}, log loss {test['logloss']:.4f} (validation AUC "
          f"{valid['auc']:.4f}) after {seconds:.0f} s; saved to {out} (results.json, auc.png)")
    return 0


def plot_auc(history: list[dict], path: Path, title: str) -> None:
    """Validation AUC at every validation round of finetuning (the round kept is the highest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs, auc = [h["epoch"] for h in history], [h["valid_auc"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(epochs, auc, marker="o")
    best = int(np.argmax(auc))
    ax.annotate(f"kept: {auc[best]:.4f}", (epochs[best], auc[best]), textcoords="offset points", xytext=(5, -12))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation AUC")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
