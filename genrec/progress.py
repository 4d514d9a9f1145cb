"""The trainers' progress bar, quiet: one bar, no printed dict per log step (those go to train_log.jsonl)."""

from transformers import ProgressCallback


class QuietProgress(ProgressCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        pass
