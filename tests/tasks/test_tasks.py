import json

import datasets
import numpy as np
import pandas as pd
import pytest

from genrec.cli import main
from genrec.data import DataError, RecDataset, leave_one_out
from genrec.data.text import make_item
from semid.tokenizer import SemanticIdTokenizer
from tasks import TaskConfig, build_sft, summary
from tasks import templates as T
from tasks.items import derived_queries
from tests.tiny_lm import save_tiny_lm


def _world(users=40, n_items=30, seed=0):
    """A small dataset with text and arbitrary unique codes (codes need no quantizer here)."""
    rng = np.random.default_rng(seed)
    items = [make_item(f"it{i}", title=f"Product {i}", description=f"About product {i}." if i % 3 else None,
                       categories=["Shop", f"Kind {i % 4}"], brand=f"Brand{i % 5}") for i in range(n_items)]
    rows = [(f"u{u}", f"it{i}") for u in range(users) for i in rng.choice(n_items, rng.integers(3, 12), replace=False)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    ds = RecDataset.from_records(items, inter, "t")
    codes = np.array([[i // 10, (i // 3) % 4, i % 7] for i in range(ds.num_items)])
    return ds, SemanticIdTokenizer(codes, list(ds.items["item_id"]), [10, 4, 7])


def test_training_rows_use_only_the_training_part():
    ds, semid = _world()
    sft = build_sft(ds, semid, TaskConfig(max_history=4))
    split = leave_one_out(ds, 4)
    seqs = ds.sequences()
    for row in sft["train"]:
        if row["user"] < 0:
            continue  # item-level rows carry no user behaviour
        train = list(split.train[row["user"]])
        history = row["history"]
        if row["target_item"] < 0:  # preference rows: history is the training tail
            assert history == train[-len(history):]
            continue
        positions = [t for t in range(1, len(train)) if train[t] == row["target_item"]
                     and train[max(0, t - 4):t] == history]
        assert positions, row  # (history, target) is a prefix/next pair inside the training part
        assert len(train) == len(seqs[row["user"]]) - 2
    # evaluation rows: valid sees the training part, test adds the validation item
    for part, evalset in (("valid", split.valid), ("test", split.test)):
        assert [r["target_item"] for r in sft[part]] == list(evalset.targets)
        assert [r["history"] for r in sft[part]] == [list(h) for h in evalset.histories]


def test_seqrec_has_a_row_per_training_position_and_at_least_five_templates():
    ds, semid = _world()
    split = leave_one_out(ds)
    sft = build_sft(ds, semid, TaskConfig(tasks=("seqrec",)))
    assert sft["train"].num_rows == sum(max(len(s) - 1, 0) for s in split.train)
    assert len(T.SEQREC) >= 5 and len(set(sft["train"]["template"])) == len(T.SEQREC)
    row = sft["train"][0]
    history_tokens = ", ".join(semid.item_to_tokens(i) for i in row["history"])
    assert row["prompt"] == T.SEQREC[row["template"]].format(history=history_tokens)
    assert semid.tokens_to_item(row["completion"]) == row["target_item"]


def test_history_loss_windows_make_every_training_position_a_target_once():
    from tasks.rows import windows

    by_hand = [(0, list(range(24, 44)), 44), (0, list(range(4, 24)), 24), (0, [0, 1, 2, 3], 4)]
    assert [(u, list(h), t) for u, h, t in windows([np.arange(45)], 20)] == by_hand
    ds, semid = _world(users=60)
    split = leave_one_out(ds, 3)
    sft = build_sft(ds, semid, TaskConfig(tasks=("seqrec", "item2index"), max_history=3, history_loss=True))
    targets: dict[int, list[int]] = {}
    for row in sft["train"]:
        assert row["history_loss"] == (row["task"] == "seqrec")
        if row["history_loss"]:  # targets: the history items after the first of the window, then the completion
            assert 1 <= len(row["history"]) <= 3
            targets.setdefault(row["user"], []).extend(row["history"][1:] + [row["target_item"]])
    for user, train in enumerate(split.train):
        if len(train) >= 2:
            assert sorted(targets[user]) == sorted(train[1:].tolist())


def test_evaluation_rows_are_fixed_and_all_templates_multiplies_them():
    ds, semid = _world()
    a = build_sft(ds, semid, TaskConfig(seed=1))
    b = build_sft(ds, semid, TaskConfig(seed=2))
    assert a["test"]["prompt"] == b["test"]["prompt"] and set(a["test"]["template"]) == {0}
    assert a["train"]["prompt"] != b["train"]["prompt"]  # training templates are drawn by the seed
    many = build_sft(ds, semid, TaskConfig(tasks=("seqrec",), all_templates=True))
    assert many["test"].num_rows == len(T.SEQREC) * a["test"].num_rows


def test_item_tasks_skip_missing_fields_and_link_text_to_codes():
    ds, semid = _world()
    sft = build_sft(ds, semid, TaskConfig(tasks=("item2index", "index2item")))
    counts = summary(sft)["train"]
    with_description = sum(1 for d in ds.items["description"] if d)
    assert counts["item2index"] == counts["index2item"] == ds.num_items + 2 * with_description
    for row in sft["train"]:
        item = row["target_item"]
        if row["task"] == "item2index:title":
            assert ds.items["title"][item] in row["prompt"] and row["completion"] == semid.item_to_tokens(item)
        if row["task"] == "index2item:title":
            assert semid.item_to_tokens(item) in row["prompt"] and row["completion"] == ds.items["title"][item]


def test_derived_queries_by_hand():
    item = make_item("x", title="Northpeak Ultralight Tent, Forest Green", categories=["Outdoors", "Camping", "Tent"],
                     brand="Northpeak")
    assert derived_queries(item) == ["tent by northpeak", "ultralight tent", "camping tent"]
    assert derived_queries(make_item("y")) == []


def test_chat_format_and_sampling():
    ds, semid = _world()
    sft = build_sft(ds, semid, TaskConfig(chat=True, sample_per_task=7))
    row = sft["train"][0]
    assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"
    assert all(n <= 7 for n in summary(sft)["train"].values())


def test_bad_inputs():
    ds, semid = _world()
    with pytest.raises(DataError, match="unknown task"):
        build_sft(ds, semid, TaskConfig(tasks=("seqrec", "nonsense")))
    partial = SemanticIdTokenizer(semid.codes[:-3], semid.item_ids[:-3], semid.level_sizes)
    with pytest.raises(DataError, match="do not cover 3 of"):
        build_sft(ds, partial, TaskConfig())
    tiny = RecDataset.from_records(None, pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}), "t")
    tiny_semid = SemanticIdTokenizer(np.array([[0]]), ["a"], [1])
    with pytest.raises(DataError, match="no training rows"):
        build_sft(tiny, tiny_semid, TaskConfig(tasks=("seqrec",)))


class _FakeGenerator:
    def __init__(self):
        self.seen = []

    def generate(self, prompts):
        self.seen += prompts
        return ["likes products" if i % 2 else "" for i, _ in enumerate(prompts)]


def test_preference_rows_come_from_the_generator_and_skip_empty_answers(monkeypatch):
    ds, semid = _world()
    fake = _FakeGenerator()
    monkeypatch.setattr("tasks.build.Generator", lambda *a, **k: fake)
    sft = build_sft(ds, semid, TaskConfig(tasks=("preference",), preference_model="fake"))
    rows = sft["train"]
    assert rows.num_rows == len(fake.seen) // 2 and set(rows["completion"]) == {"likes products"}
    assert build_sft(ds, semid, TaskConfig(tasks=("seqrec", "preference")))["train"].num_rows > 0  # skipped cleanly


def test_local_lm_generation_is_cached(tmp_path, monkeypatch):
    from tasks.generate import Generator

    calls = []
    monkeypatch.setattr(Generator, "_run", lambda self, prompts, samples=1, temperature=1.0: calls.append(
        list(prompts)) or [f"{p.upper()}{s}" for p in prompts for s in range(samples)])
    first = Generator("m", tmp_path).generate(["a", "b", "a"])
    second = Generator("m", tmp_path).generate(["b", "c"])
    assert first == ["A0", "B0", "A0"] and second == ["B0", "C0"] and calls == [["a", "b"], ["c"]]
    sampled = Generator("m", tmp_path).sample(["a", "c"], 3, seed=1)  # samples are cached apart from greedy
    assert sampled == [["A0", "A1", "A2"], ["C0", "C1", "C2"]] and calls[-1] == ["a", "c"]
    assert Generator("m", tmp_path).sample(["c"], 3, seed=1) == [["C0", "C1", "C2"]] and len(calls) == 3


def test_generation_runs_a_real_causal_lm(tmp_path):
    from tasks.generate import Generator

    lm = save_tiny_lm(tmp_path / "lm", ["likes", "tents", "and", "boots"])
    answers = Generator(lm, tmp_path / "cache", max_new_tokens=3).generate(["tents", "boots and"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert json.loads(next((tmp_path / "cache").glob("*.json")).read_text())


def test_cli_writes_loadable_splits(tmp_path, capsys):
    ds, semid = _world()
    ds.save(tmp_path / "data")
    semid.save_pretrained(tmp_path / "semid")
    rc = main(["tasks", "build", "--data", str(tmp_path / "data"), "--semid", str(tmp_path / "semid"),
               "--out", str(tmp_path / "sft"), "--tasks", "seqrec,fusion,search"])
    assert rc == 0 and "seqrec" in capsys.readouterr().out
    sft = datasets.load_from_disk(str(tmp_path / "sft"))
    info = json.loads((tmp_path / "sft" / "tasks.json").read_text())
    assert info["semid_fingerprint"] == semid.fingerprint()
    assert info["rows"]["train"]["fusion"] == summary(sft)["train"]["fusion"] > 0


def test_cli_history_loss_builds_window_rows(tmp_path):
    ds, semid = _world()
    ds.save(tmp_path / "data")
    semid.save_pretrained(tmp_path / "semid")
    assert main(["tasks", "build", "--data", str(tmp_path / "data"), "--semid", str(tmp_path / "semid"),
                 "--out", str(tmp_path / "sft"), "--tasks", "seqrec", "--max-history", "3", "--history-loss"]) == 0
    rows = datasets.load_from_disk(str(tmp_path / "sft"))["train"]
    split = leave_one_out(ds, 3)
    assert all(rows["history_loss"]) and rows.num_rows == sum(-(-(len(s) - 1) // 3) for s in split.train)
    assert json.loads((tmp_path / "sft" / "tasks.json").read_text())["config"]["history_loss"] is True
