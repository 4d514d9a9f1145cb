"""`genrec push` (a model folder to the Hugging Face Hub) and `genrec export` (a plain transformers folder)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_folder, check_output
from ..errors import DataError

SKIPPED = ["checkpoints/*", ".lock", ".genrec", "*/.genrec"]  # what a push leaves out: resumable state, markers


@dataclass
class PushConfig:
    model: str = ""                # a genrec model folder or a saved baseline folder
    repo: str = ""                 # the Hub repository, e.g. user/genrec-beauty
    private: bool = False          # create the repository as private
    token: str | None = None       # a Hub token (default: the logged-in one, HF_TOKEN)


def push(cfg: PushConfig) -> int:
    from huggingface_hub import HfApi

    folder = Path(cfg.model)
    if not ((folder / "genrec.json").is_file() or (folder / "baseline.json").is_file()):
        raise DataError(f"{folder}: not a model saved by genrec (no genrec.json or baseline.json)")
    api = HfApi(token=cfg.token)
    try:
        api.create_repo(cfg.repo, private=cfg.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(folder), repo_id=cfg.repo, repo_type="model",
                                   ignore_patterns=SKIPPED, commit_message=f"genrec push {folder.name}")
    except OSError as err:  # huggingface_hub's HTTP and connection errors derive from OSError
        raise DataError(f"push to {cfg.repo} failed: {type(err).__name__}: {err}") from None
    print(f"pushed {folder} to https://huggingface.co/{cfg.repo} ({getattr(commit, 'oid', '')})")
    return 0


@dataclass
class ExportConfig:
    model: str = ""                # a genrec model folder
    out: str = ""                  # the plain transformers folder to write
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def export(cfg: ExportConfig) -> int:
    """LoRA merged, code-token rows in place: `AutoModelForCausalLM.from_pretrained(out)` needs nothing else;
    catalogue.json maps each semantic ID to its item, prompts.json holds the templates the model was trained on."""
    from ..model import GenRecModel

    check_output(cfg.out, inputs=(cfg.model,), overwrite=cfg.overwrite)
    genrec = GenRecModel.from_pretrained(cfg.model)
    model = genrec.model.merge_and_unload() if genrec.is_peft else genrec.model
    ids = genrec.semid.item_ids
    catalogue = {genrec.semid.item_to_tokens(i): {"item_id": item, "title": genrec.titles.get(item)}
                 for i, item in enumerate(ids)}
    with atomic_folder(cfg.out) as tmp:
        model.save_pretrained(tmp)
        genrec.tokenizer.save_pretrained(tmp)
        (tmp / "catalogue.json").write_text(json.dumps(catalogue, indent=0))
        (tmp / "prompts.json").write_text(json.dumps(genrec.info["prompts"], indent=2))
    print(f"exported {cfg.model} to {cfg.out}: a plain {type(model).__name__} with {len(ids):,} items in "
          "catalogue.json")
    return 0
