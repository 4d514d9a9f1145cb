"""`genrec finetune`: step 2 (also `accelerate launch -m genrec finetune ...`)."""

from __future__ import annotations

from ..finetune import FinetuneConfig, finetune

__all__ = ["FinetuneConfig", "run"]


def run(cfg: FinetuneConfig) -> int:
    summary = finetune(cfg)
    print(f"trained {summary['steps']} steps in {summary['train_seconds'] or 0:.0f} s; best validation "
          f"NDCG@10 {summary.get('eval_ndcg@10', 0):.4f}, Recall@10 {summary.get('eval_recall@10', 0):.4f}")
    print(f"saved to {cfg.out} (train_log.jsonl, train_curves.png)")
    return 0
