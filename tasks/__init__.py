"""Multi-task SFT data builders (LC-Rec task family): pure functions of dataset, split and semantic IDs."""

from .build import DEFAULT_TASKS, TASKS, TaskConfig, build_sft, save_sft, summary

__all__ = ["DEFAULT_TASKS", "TASKS", "TaskConfig", "build_sft", "save_sft", "summary"]
