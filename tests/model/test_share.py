"""Model cards, `genrec push` (offline: the Hub calls are recorded, not made) and `genrec export`."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from genrec.cli import main
from genrec.model import GenRecModel
from tests.model.test_finetune import _config


@pytest.fixture(scope="module")
def lora_model(world, tmp_path_factory):
    from genrec.finetune import finetune
    from tests.model.test_model import _pretend_pretrained

    root = tmp_path_factory.mktemp("share")
    base = _pretend_pretrained(root / "base", tied=False)
    backbone = {"name": base, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}
    finetune(_config(world, root / "m", backbone=backbone, max_steps=2, eval_steps=2, learning_rate=0.05))
    return root / "m"


def test_the_model_card_says_what_the_model_is(lora_model, world):
    card = (lora_model / "README.md").read_text()
    head = card.split("---")[1]
    assert "library_name: genrec" in head and "base_model: " in head and f"datasets: [{world['dataset'].name}]" in head
    levels = " x ".join(map(str, world["semid"].level_sizes))
    assert f"{world['semid'].num_items:,} items" in card and levels in card and "finetuned with LoRA" in card
    assert "Validation (the kept checkpoint): NDCG@10" in card and "## How it was made" in card


def test_push_uploads_the_folder_without_checkpoints(lora_model, monkeypatch, capsys):
    import huggingface_hub

    calls = []
    api = huggingface_hub.HfApi
    monkeypatch.setattr(api, "create_repo", lambda self, repo, **kw: calls.append(("create", repo, kw)))
    monkeypatch.setattr(api, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    assert main(["push", "--model", str(lora_model), "--repo", "me/genrec-tiny", "--private"]) == 0
    assert calls[0] == ("create", "me/genrec-tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    upload = calls[1][1]
    assert upload["folder_path"] == str(lora_model) and upload["repo_id"] == "me/genrec-tiny"
    assert "checkpoints/*" in upload["ignore_patterns"]
    assert main(["push", "--model", str(lora_model.parent), "--repo", "me/x"]) == 2
    assert "not a model saved by genrec" in capsys.readouterr().err


def test_export_is_a_plain_model_with_the_same_scores(lora_model, tmp_path):
    assert main(["export", "--model", str(lora_model), "--out", str(tmp_path / "plain")]) == 0
    genrec = GenRecModel.from_pretrained(lora_model)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "plain").eval()
    assert not hasattr(plain, "peft_config")
    history = genrec.semid.item_ids
    prompt = genrec.history_prompt(np.arange(3))  # a prompt with code tokens, scored by both
    batch = genrec.tokenizer([prompt], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(plain(**batch).logits, genrec.model(**batch).logits, atol=1e-4, rtol=1e-4)
    catalogue = json.loads((tmp_path / "plain" / "catalogue.json").read_text())
    assert len(catalogue) == len(history)
    assert catalogue[genrec.semid.item_to_tokens(5)]["item_id"] == history[5]
    assert json.loads((tmp_path / "plain" / "prompts.json").read_text()) == genrec.info["prompts"]
