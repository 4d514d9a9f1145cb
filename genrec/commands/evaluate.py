"""`genrec evaluate`: step 4, any saved model (genrec or baseline) or popularity on a dataset's split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_file, check_output_file
from ..data import MAX_HISTORY, RecDataset, leave_one_out
from ..errors import DataError
from ..evaluate import TABLE_KEYS, EvalOptions, PopularityRecommender, evaluate, metrics_table


@dataclass
class EvaluateConfig(EvalOptions):
    model: str = ""                # a genrec model folder, a saved baseline folder, or `popularity`
    data: str = ""                 # the dataset folder the model was trained on
    out: str | None = None         # write the metrics JSON here
    max_history: int = MAX_HISTORY  # history items a model sees
    fuse_with: str | None = None   # a second model (e.g. a saved SASRec): blend both, the weight chosen on validation
    overwrite: bool = False        # replace the --out file if it exists


def load_recommender(path: str, dataset: RecDataset, splits, options: EvalOptions):
    """(recommender, display name) for a model folder of any kind, or `popularity`."""
    if path == "popularity":
        return PopularityRecommender(splits.train, dataset.num_items), "popularity"
    if (Path(path) / "baseline.json").is_file():
        from baselines.methods import load

        model = load(path)
        return model, f"{model.method} ({path})"
    from ..model import GenRecModel

    model = GenRecModel.from_pretrained(path)
    if model.semid.item_ids != list(dataset.items["item_id"]):
        raise DataError(f"{path} was trained on other items than {dataset.name}")
    model.decode_options = {"beams": options.beams, "exact": options.exact}
    return model, f"genrec ({path})"


def evaluate_command(cfg: EvaluateConfig) -> int:
    if cfg.out:
        check_output_file(cfg.out, overwrite=cfg.overwrite)
    dataset = RecDataset.load(cfg.data)
    splits = leave_one_out(dataset, cfg.max_history)
    model, name = load_recommender(cfg.model, dataset, splits, cfg)
    fusion = {}
    if cfg.fuse_with:
        from ..fusion import fuse

        other, other_name = load_recommender(cfg.fuse_with, dataset, splits, cfg)
        for path, each in ((cfg.model, model), (cfg.fuse_with, other)):
            if not hasattr(each, "score_items"):
                raise DataError(f"--fuse-with: {path} does not score every item (genrec needs head: parallel)")
        model, fusion = fuse(model, other, splits, cfg.exclude_history)
        name = f"{name} + {other_name}"
        print(f"fusion weight {fusion['fusion_weight']} (validation NDCG@10 "
              f"{fusion['fusion_valid_ndcg@10'][fusion['fusion_weight']]:.4f})")
    result = evaluate(model, dataset, cfg.split, cfg.max_history, splits=splits, users=cfg.users,
                      exclude_history=cfg.exclude_history)
    result.update(fusion)
    print(f"{cfg.split}: {result['users']:,} users, full ranking over {dataset.num_items:,} items")
    print(metrics_table({name: result, **{f"  {g}": m for g, m in result["groups"].items()}}, TABLE_KEYS))
    print(f"MRR@20 {result['mrr@20']:.4f}; validity {result['validity']:.3f}; coverage@10 {result['coverage@10']:.3f}")
    if cfg.out:
        with atomic_file(cfg.out) as f:
            f.write(json.dumps(result, indent=2))
        print(f"saved to {cfg.out}")
    return 0
