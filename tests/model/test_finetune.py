import json
import logging
import os
import subprocess
import sys

import pytest
import torch
import yaml

from genrec.config import apply_overrides, load_config
from genrec.data import DataError
from genrec.finetune import FinetuneConfig, finetune
from genrec.model import GenRecModel

TINY = {"scratch": {"layers": 1, "hidden": 32, "heads": 2, "kv_heads": 2, "intermediate": 64}}


def _config(world, out, **extra):
    root = world["root"]
    raw = {"data": str(root / "data"), "semid": str(root / "semid"), "sft": str(root / "sft"), "out": str(out),
           "backbone": TINY, "max_steps": 6, "batch_size": 16, "eval_steps": 3, "eval_users": 20,
           "eval_beams": 20, "logging_steps": 1, "learning_rate": 0.003, "max_length": 128, **extra}
    return load_config(FinetuneConfig, None, [f"{k}={json.dumps(v)}" for k, v in raw.items()])


def test_overrides_reach_nested_keys():
    raw = apply_overrides({"backbone": {"scratch": {"layers": 4}}}, ["backbone.scratch.layers=2", "epochs=0.5"])
    assert raw == {"backbone": {"scratch": {"layers": 2}}, "epochs": 0.5}
    with pytest.raises(DataError, match="unknown key"):
        load_config(FinetuneConfig, None, ["epoch=1"])


def test_finetune_saves_a_model_that_recommends_and_logs(world, tmp_path):
    summary = finetune(_config(world, tmp_path / "m"))
    assert summary["steps"] == 6 and 0.0 <= summary["eval_ndcg@10"] <= 1.0
    model = GenRecModel.from_pretrained(tmp_path / "m")
    top = model.recommend([world["dataset"].sequences()[0][:3]], k=5)
    assert ((top >= 0) & (top < world["semid"].num_items)).all()
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) >= 5 and losses[-1] < losses[0]  # the loss falls
    assert sum("eval_ndcg@10" in r for r in log) >= 2 and (tmp_path / "m" / "train_curves.png").is_file()


def test_resume_continues_from_the_saved_step(world, tmp_path):
    finetune(_config(world, tmp_path / "m", max_steps=6))
    summary = finetune(_config(world, tmp_path / "m", max_steps=9, resume=True))
    assert summary["steps"] == 9
    log = [json.loads(line) for line in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 10))  # steps 1-6 once, then 7-9: resumed
    with pytest.raises(DataError, match="no complete checkpoint"):
        finetune(_config(world, tmp_path / "fresh", resume=True))


def test_sft_data_from_other_semantic_ids_is_refused(world, tmp_path):
    info = json.loads((world["root"] / "sft" / "tasks.json").read_text())
    other = tmp_path / "sft"
    import shutil

    shutil.copytree(world["root"] / "sft", other)
    (other / "tasks.json").write_text(json.dumps({**info, "semid_fingerprint": "0000"}))
    with pytest.raises(DataError, match="built with other semantic IDs"):
        finetune(_config(world, tmp_path / "m", sft=str(other)))


def test_two_processes_on_cpu_with_the_history_loss(world, tmp_path):
    from tasks import TaskConfig, build_sft, save_sft

    tasks = TaskConfig(tasks=("seqrec", "item2index"), history_loss=True)  # its loss reads the head under DDP
    save_sft(build_sft(world["dataset"], world["semid"], tasks), tmp_path / "sft", tasks, world["semid"])
    cfg = _config(world, tmp_path / "m", max_steps=4, eval_steps=2, sft=str(tmp_path / "sft"), max_length=256)
    recipe = tmp_path / "recipe.yaml"
    raw = {k: v for k, v in vars(cfg).items() if k != "backbone"}
    raw["backbone"] = TINY
    recipe.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
                          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                          "-m", "genrec", "finetune", "--config", str(recipe)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "m" / "genrec.json").is_file()
    assert GenRecModel.from_pretrained(tmp_path / "m").semid.num_items == world["semid"].num_items


def test_lora_finetune_trains_the_code_rows_of_an_untied_head(world, tmp_path):
    from tests.model.test_model import _pretend_pretrained

    base = _pretend_pretrained(tmp_path / "base", tied=False)
    backbone = {"name": base, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}
    finetune(_config(world, tmp_path / "m", backbone=backbone, max_steps=4, learning_rate=0.05))
    model = GenRecModel.from_pretrained(tmp_path / "m").model
    head = model.get_output_embeddings().token_adapter
    ids = head.token_indices["default"]
    base_rows = head.base_layer.weight[ids]
    assert not torch.allclose(head.trainable_tokens_delta["default"], base_rows)  # trained through trl


def test_completion_loss_equals_the_models_own_loss_on_right_padded_rows(tmp_path):
    from transformers import AutoModelForCausalLM

    from genrec.finetune import completion_loss
    from tests.tiny_lm import save_tiny_lm

    model = AutoModelForCausalLM.from_pretrained(save_tiny_lm(tmp_path, [f"w{i}" for i in range(40)], layers=2))
    gen = torch.Generator().manual_seed(0)
    rows, width = [(9, 3), (4, 5), (12, 1), (6, 2)], 16  # (prompt, completion) lengths, right-padded to width
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for r, (prompt, completion) in enumerate(rows):
        n = prompt + completion
        ids[r, :n] = torch.randint(3, 43, (n,), generator=gen)
        mask[r, :n] = 1
        labels[r, prompt:n] = ids[r, prompt:n]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    expected = model(**batch).loss
    loss, logits = completion_loss(model, batch)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    assert logits.shape[1] == 5 + 1  # only the longest completion's positions (+1) reach the output layer
    summed, _ = completion_loss(model, batch, num_items_in_batch=torch.tensor(22))
    torch.testing.assert_close(summed, expected * 11 / 22, atol=1e-5, rtol=1e-5)
    whole = {"input_ids": ids[:1], "attention_mask": torch.ones_like(ids[:1]), "labels": ids[:1].clone()}
    # a row labelled from its first token: that token has nothing before it, as in the model's own loss
    torch.testing.assert_close(completion_loss(model, whole)[0] * width / (width - 1), model(**whole).loss,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_history_targets_are_scored_over_the_code_tokens_only(tmp_path, lora):
    from transformers import AutoModelForCausalLM

    from genrec.finetune import completion_loss
    from genrec.model import LoraSettings, apply_lora
    from tests.tiny_lm import save_tiny_lm

    words = [f"w{i}" for i in range(40)]
    model = AutoModelForCausalLM.from_pretrained(save_tiny_lm(tmp_path, words, tied=not lora, layers=2))
    codes = torch.arange(30, 43)  # the "code tokens"; words are 3..29
    if lora:  # the head's code rows are peft's trained rows, not the base layer's
        model = apply_lora(model, LoraSettings(r=2, alpha=4, dropout=0.0), codes.tolist())
        with torch.no_grad():
            model.get_output_embeddings().token_adapter.trainable_tokens_delta["default"].normal_()
    # right-padded rows: (history code labels, unlabelled words, completion) by position; the first row has no
    # history and a long completion (a title), so the completion span reaches into the others' history
    # labels; the last row ends with an unlabelled token after its completion, as some chat templates do
    rows = [([], 2, [5, 6, 7, 8, 9, 10, 11, 12, 4]), ([33, 30, 41], 3, [32, 38, 5]), ([40, 36], 2, [39, 4])]
    width = 14
    gen = torch.Generator().manual_seed(1)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for r, (history, words, completion) in enumerate(rows):
        after = [6] if r == 2 else []
        row = [7, *history, *torch.randint(3, 30, (words,), generator=gen).tolist(), *completion, *after]
        ids[r, : len(row)], mask[r, : len(row)] = torch.tensor(row), 1
        start = 1 + len(history) + words
        labelled = [1 + i for i in range(len(history))] + list(range(start, start + len(completion)))
        labels[r, labelled] = ids[r, labelled]
    logits = model(input_ids=ids, attention_mask=mask).logits
    over_codes, over_all, count = torch.tensor(0.0), torch.tensor(0.0), 0
    for r, (history, words, completion) in enumerate(rows):  # by hand, position by position
        for i, target in enumerate(history):
            over_codes -= torch.log_softmax(logits[r, i, codes], -1)[int((codes == target).nonzero())]
            over_all -= torch.log_softmax(logits[r, i], -1)[target]
        start = 1 + len(history) + words
        for i, target in enumerate(completion):
            over_codes -= torch.log_softmax(logits[r, start + i - 1], -1)[target]
            over_all -= torch.log_softmax(logits[r, start + i - 1], -1)[target]
        count += len(history) + len(completion)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    torch.testing.assert_close(completion_loss(model, batch, history_head=codes)[0], over_codes / count,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(completion_loss(model, batch)[0], over_all / count, atol=1e-5, rtol=1e-5)
    labels[1, 1] = 5  # a word labelled in the history
    with pytest.raises(ValueError, match="not a code token"):
        completion_loss(model, {"input_ids": ids, "attention_mask": mask, "labels": labels}, history_head=codes)


def test_label_history_codes_by_hand():
    from genrec.finetune import label_history_codes

    # prompt: text 1, item (7, 8), text 2, item (9, 7), text 3; completion (8, 9) and end 4
    ids = [1, 7, 8, 2, 9, 7, 3, 8, 9, 4]
    labels = [-100] * 7 + [8, 9, 4]
    assert label_history_codes(ids, labels, {7, 8, 9}, skip=2) == [-100] * 4 + [9, 7, -100, 8, 9, 4]
    assert label_history_codes(ids, labels, {7, 8, 9}, skip=4) == labels


def test_history_loss_trains_on_every_history_item(world, tmp_path, monkeypatch):
    from genrec import finetune as ft
    from tasks import TaskConfig, build_sft, save_sft

    cfg = TaskConfig(tasks=("seqrec", "item2index"), history_loss=True)
    sft = build_sft(world["dataset"], world["semid"], cfg)
    save_sft(sft, tmp_path / "sft", cfg, world["semid"])
    seen = {}

    class Spy(ft.RankingSFTTrainer):  # records the labels of the tokenized training rows it trains on
        def train(self, *args, **kwargs):
            seen["labelled"] = [sum(label != -100 for label in row["labels"]) for row in self.train_dataset]
            seen["flags"] = list(self.train_dataset["history_loss"])
            return super().train(*args, **kwargs)

    monkeypatch.setattr(ft, "RankingSFTTrainer", Spy)
    out = finetune(_config(world, tmp_path / "m", sft=str(tmp_path / "sft"), max_steps=4, max_length=256))
    assert out["steps"] == 4
    levels, rows = world["semid"].num_levels, list(sft["train"])
    assert seen["flags"] == [r["history_loss"] for r in rows]
    # a seqrec row labels each history item but the first and its completion (`levels` tokens each, so
    # `levels` x history length) plus the end token; an item2index row only its completion and end token
    expected = [levels * len(r["history"]) + 1 if r["history_loss"] else levels + 1 for r in rows]
    assert seen["labelled"] == expected


def test_rows_longer_than_max_length_are_reported(world, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="genrec.finetune"):
        finetune(_config(world, tmp_path / "m", max_steps=2, max_length=40))
    tokenizer = GenRecModel.from_pretrained(tmp_path / "m").tokenizer
    prompts = world["sft"]["train"]["prompt"]
    too_long = sum(len(tokenizer(p)["input_ids"]) >= 40 for p in prompts)
    assert too_long > 0
    assert f"{too_long} of {len(prompts)} training rows have prompts of max_length=40" in caplog.text


def test_tensorboard_tracking_writes_event_files(world, tmp_path):
    finetune(_config(world, tmp_path / "m", max_steps=2, eval_steps=2, report_to="tensorboard", run_name="tiny"))
    events = list((tmp_path / "m").rglob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    with pytest.raises(DataError, match="report_to: unknown tensorbored"):
        _config(world, tmp_path / "x", report_to="tensorbored")


def test_bad_settings_fail_when_the_config_is_read(world, tmp_path):
    for key, value, message in [("max_steps", "abc", "max_steps: expected an integer"),
                                ("learning_rate", -1, "learning_rate must be positive"),
                                ("batch_size", 0, "batch_size must be positive"),
                                ("eval_steps", 0, "eval_steps must be positive"),
                                ("history_head", "some", "history_head: expected one of 'codes', 'full'")]:
        with pytest.raises(DataError, match=message):
            _config(world, tmp_path / "m", **{key: value})


def test_a_nan_loss_stops_training_with_an_error():
    from genrec.finetune import FiniteLoss

    class State:
        global_step = 7

    FiniteLoss().on_log(None, State(), None, logs={"loss": 1.5})
    with pytest.raises(DataError, match="the loss is nan at step 7"):
        FiniteLoss().on_log(None, State(), None, logs={"loss": float("nan")})
