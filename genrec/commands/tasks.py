"""`genrec tasks build`: the multi-task SFT data."""

from __future__ import annotations

from dataclasses import dataclass

from semid.tokenizer import SemanticIdTokenizer
from tasks import TaskConfig, build_sft, save_sft, summary

from ..atomic import check_output
from ..config import section
from ..data import RecDataset
from .codebook import CACHE


@dataclass
class TasksBuildConfig(TaskConfig):
    data: str = ""                 # a dataset folder from `genrec data prepare`
    semid: str = ""                # a folder from `genrec codebook build`
    out: str = ""                  # output folder (datasets.save_to_disk)
    cache_dir: str | None = str(CACHE / "generated")  # cache of local-LM answers
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def build(cfg: TasksBuildConfig) -> int:
    check_output(cfg.out, inputs=(cfg.data, cfg.semid), overwrite=cfg.overwrite)
    tasks_cfg = section(cfg, TaskConfig)
    semid = SemanticIdTokenizer.from_pretrained(cfg.semid)
    sft = build_sft(RecDataset.load(cfg.data), semid, tasks_cfg)
    save_sft(sft, cfg.out, tasks_cfg, semid)
    counts = summary(sft)
    names = sorted({t for part in counts.values() for t in part})
    print(f"{'task':<12}" + "".join(f"{name:>10}" for name in counts))
    for task in names:
        print(f"{task:<12}" + "".join(f"{counts[name].get(task, 0):>10,}" for name in counts))
    print(f"saved to {cfg.out} (datasets.load_from_disk)")
    return 0
