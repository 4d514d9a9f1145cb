"""What both trainers (the SFT one and the parallel head's) report: a quiet progress bar and the ranking
evaluation."""

import numpy as np
from transformers import ProgressCallback

from .evaluate import ranking_metrics


class QuietProgress(ProgressCallback):
    """The trainer's progress bar without a printed dict per log step (they go to train_log.jsonl)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


def report_ranking(trainer, top: np.ndarray, targets: np.ndarray, prefix: str) -> dict:
    """Recall / NDCG @5/10/20 of a validation ranking, logged and handed to the callbacks (early stopping, the
    kept checkpoint) as the trainer's evaluation."""
    metrics = {f"{prefix}_{k}": v for k, v in ranking_metrics(top, targets).items() if k.endswith(("@10", "@20", "@5"))}
    metrics["epoch"] = trainer.state.epoch
    trainer.log(metrics)
    trainer.control = trainer.callback_handler.on_evaluate(trainer.args, trainer.state, trainer.control, metrics)
    return metrics
