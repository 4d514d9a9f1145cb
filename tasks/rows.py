"""One SFT row: prompt, completion, task, template index, and where it comes from.

`user` and `history` are set for rows built from a user's history (-1 and [] for item-level rows);
`target_item` is the item the completion names. They let evaluation rank, and tests prove there is no leakage.
`history_loss` marks rows whose history items are targets too (each predicted from the items before it).
"""

from __future__ import annotations

import numpy as np


def make_row(prompt: str, completion: str, task: str, template: int, target_item: int,
             user: int = -1, history: np.ndarray | None = None, history_loss: bool = False) -> dict:
    return {"prompt": prompt, "completion": completion, "task": task, "template": int(template),
            "user": int(user), "history": [int(i) for i in (history if history is not None else [])],
            "target_item": int(target_item), "history_loss": bool(history_loss)}


def prefixes(train: list[np.ndarray], max_history: int):
    """(user, history, target) for every next-item position of every user's training part."""
    for user, seq in enumerate(train):
        for t in range(1, len(seq)):
            yield user, seq[max(0, t - max_history) : t], int(seq[t])


def windows(train: list[np.ndarray], max_history: int):
    """(user, history, target) for windows of up to `max_history` + 1 items ending at each user's last training
    item and every `max_history` items before it: with the loss on every history item but a window's first, each
    position from the second on is a target exactly once (the first of a window is the target of the one before).
    """
    for user, seq in enumerate(train):
        for end in range(len(seq) - 1, 0, -max_history):
            yield user, seq[max(0, end - max_history) : end], int(seq[end])


def as_chat(row: dict) -> dict:
    """A row's prompt and completion as chat messages (user, then assistant), for chat-template backbones."""
    return {"prompt": [{"role": "user", "content": row["prompt"]}],
            "completion": [{"role": "assistant", "content": row["completion"]}]}
