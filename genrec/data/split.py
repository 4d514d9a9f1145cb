"""Leave-one-out split: per user, last item = test, second last = validation, the rest = training.

Users with fewer than 3 interactions cannot give a training item plus two held-out ones; they stay in
training only and are counted. Evaluation histories keep the last `max_history` items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dataset import RecDataset

MAX_HISTORY = 20  # items of history a model sees (the field's usual setting); every max_history default


@dataclass
class EvalSet:
    """Users with the history a model sees and the one item it must rank."""

    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Split:
    train: list[np.ndarray]  # per user, the training part of the sequence (full length)
    valid: EvalSet           # history = training part
    test: EvalSet            # history = training part + validation item
    train_only_users: int    # users with under 3 interactions


def leave_one_out(dataset: RecDataset, max_history: int = MAX_HISTORY) -> Split:
    if max_history < 1:
        raise ValueError(f"max_history must be at least 1, got {max_history}")
    sequences = dataset.sequences()
    evaluable = [u for u, s in enumerate(sequences) if len(s) >= 3]
    train = [s[:-2] if len(s) >= 3 else s for s in sequences]

    def eval_set(offset: int) -> EvalSet:
        users = np.asarray(evaluable, dtype=np.int64)
        histories = [sequences[u][: len(sequences[u]) - offset][-max_history:] for u in evaluable]
        targets = np.asarray([sequences[u][len(sequences[u]) - offset] for u in evaluable], dtype=np.int64)
        return EvalSet(users, histories, targets)

    return Split(train, eval_set(2), eval_set(1), len(sequences) - len(evaluable))
