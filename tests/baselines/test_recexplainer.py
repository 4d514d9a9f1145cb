"""RecExplainer: labels from the target model, connector placement, a frozen recommender, answer-only loss,
constrained titles equal to brute-force scoring, metrics by hand, save / load, the two commands."""

import numpy as np
import pytest
import torch

from baselines.recexplainer.align import (
    AlignCollator,
    AlignTrainConfig,
    RecExplainerConfig,
    align,
    alignment_data,
    build_trainer,
)
from baselines.recexplainer.infer import (
    TitleTrie,
    continuation_logprobs,
    history_coverage,
    ranking_ndcg,
    says_yes,
    title_beam_search,
)
from baselines.recexplainer.model import Explainer
from baselines.sequential import SequentialConfig, SequentialRecommender
from genrec.cli import main
from genrec.data import DataError, SyntheticConfig, leave_one_out, make_synthetic
from genrec.model import BackboneConfig, ScratchConfig
from tasks.explainer import ITEM_TOKEN, USER_TOKEN, AlignTaskConfig, user_rows

TINY_LM = BackboneConfig(scratch=ScratchConfig(layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64))


@pytest.fixture(scope="module")
def setup():
    dataset = make_synthetic(SyntheticConfig(users=80, seed=3))
    split = leave_one_out(dataset, 20)
    recommender = SequentialRecommender(dataset.num_items, SequentialConfig(hidden=16, epochs=2, eval_users=50))
    recommender.fit(split)
    return dataset, split, recommender


def config(variant: str, **kwargs) -> RecExplainerConfig:
    return RecExplainerConfig(variant=variant, backbone=TINY_LM, train_users=30, eval_users=10,
                              train=AlignTrainConfig(max_steps=6, batch_size=4, warmup=0), **kwargs)


def explainer_for(setup, variant: str) -> tuple[Explainer, list[dict]]:
    dataset, split, recommender = setup
    train_rows, eval_rows = alignment_data(dataset, split, recommender, config(variant))
    texts = [*train_rows["prompt"], *train_rows["completion"]]
    return Explainer.create(TINY_LM, recommender, variant, dataset.titles(), list(dataset.items["item_id"]), texts), \
        eval_rows


def test_labels_follow_the_target_model_not_the_ground_truth(setup):
    dataset, split, _ = setup
    titles, cfg = dataset.titles(), AlignTaskConfig()
    users = np.arange(12)
    histories = [split.train[u] for u in users]
    rng = np.random.default_rng(0)
    for trial in range(2):  # two different "recommenders": random score tables
        scores = rng.normal(size=(len(users), dataset.num_items))
        rows = user_rows(users, histories, scores, titles, "B", cfg, np.random.default_rng(1))
        for user, history, score in zip(users, histories, scores):
            mine = {r["task"]: r for r in rows if r["user"] == user}
            new = [i for i in np.argsort(-score) if i not in set(history.tolist())]  # brute force
            assert mine["next"]["completion"] == " " + titles[new[0]] and mine["next"]["target_item"] == new[0]
            ranked = mine["rank"]["candidates"]
            assert ranked == sorted(ranked, key=lambda i: -score[i])
            item, label = mine["classify"]["target_item"], mine["classify"]["completion"].strip()
            place = new.index(item)
            assert (place < round(0.2 * len(new))) if label == "yes" else (place >= len(new) - round(0.5 * len(new)))
            assert "history" not in mine  # B writes the history into every prompt already
        if trial == 0:
            first = [r["completion"] for r in rows if r["task"] == "next"]
    assert first != [r["completion"] for r in rows if r["task"] == "next"]  # another target, other labels


def test_connectors_fill_exactly_the_special_token_positions(setup):
    explainer, rows = explainer_for(setup, "H")
    row = next(r for r in rows if r["task"] == "rank")  # one <user> and five <item> tokens
    ids = explainer.tokenizer(row["prompt"], return_tensors="pt")["input_ids"]
    assert (ids == explainer.user_id).sum() == 1 and (ids == explainer.item_id).sum() == len(row["items"]) == 5
    got = explainer.embed(ids, [row["history"]], [row["items"]])[0]
    tokens = explainer.lm.get_input_embeddings()(ids)[0]
    model = explainer.recommender.model
    with torch.no_grad():
        user = explainer.connectors.user(model.user_vectors([np.array(row["history"])]))[0]
        items = explainer.connectors.item(model.item_table()[torch.tensor(row["items"])])
    special = (ids[0] == explainer.user_id) | (ids[0] == explainer.item_id)
    assert torch.equal(got[~special], tokens[~special])
    assert torch.allclose(got[ids[0] == explainer.user_id][0], user)
    assert torch.allclose(got[ids[0] == explainer.item_id], items)
    with pytest.raises(DataError, match="tokens for 4 items"):
        explainer.embed(ids, [row["history"]], [row["items"][:4]])


def test_behaviour_variant_has_no_vectors_in_its_prompts(setup):
    explainer, rows = explainer_for(setup, "B")
    assert all(USER_TOKEN not in r["prompt"] and ITEM_TOKEN not in r["prompt"] and not r["items"] for r in rows)


def test_loss_is_on_the_answer_tokens_only(setup, tmp_path):
    dataset, split, recommender = setup
    train_rows, _ = alignment_data(dataset, split, recommender, config("I"))
    explainer = Explainer.create(TINY_LM, recommender, "I", dataset.titles(), list(dataset.items["item_id"]),
                                 [*train_rows["prompt"], *train_rows["completion"]])
    trainer = build_trainer(explainer, train_rows, AlignTrainConfig(), tmp_path)
    examples = [trainer.train_dataset[i] for i in range(6)]
    batch = AlignCollator(explainer.tokenizer.pad_token_id)(examples)
    for row, labels, ids in zip(train_rows.select(range(6)), batch["labels"], batch["input_ids"]):
        answer = explainer.encode(row["completion"]) + [explainer.tokenizer.eos_token_id]
        assert labels[labels != -100].tolist() == answer
        prompt = len(explainer.tokenizer(row["prompt"])["input_ids"])
        assert (labels[:prompt] == -100).all() and ids[prompt : prompt + len(answer)].tolist() == answer


def test_training_moves_the_connectors_and_never_the_recommender(setup, tmp_path):
    dataset, split, recommender = setup
    before = {k: v.clone() for k, v in recommender.model.state_dict().items()}
    cfg = config("H", tasks=AlignTaskConfig(item_rows=10))  # mostly user rows: both connectors train
    explainer, summary = align(dataset, split, recommender, cfg, tmp_path)
    fresh, _ = explainer_for(setup, "H")
    assert all(torch.equal(v, before[k]) for k, v in recommender.model.state_dict().items())
    for side in ("user", "item"):
        assert not torch.equal(getattr(explainer.connectors, side)[0].weight, getattr(fresh.connectors, side)[0].weight)
    assert summary["steps"] == 6 and set(summary["alignment"]) >= {"next_hr@5", "rank_ndcg", "classify_accuracy",
                                                                   "history_coverage"}


def test_constrained_titles_are_real_and_equal_brute_force_scoring(setup):
    explainer, rows = explainer_for(setup, "I")
    row = next(r for r in rows if r["task"] == "next")
    embeds = explainer.prompt_embeds(row["prompt"], row["history"], row["items"])
    trie = TitleTrie(explainer)
    titles = sorted(set(explainer.titles))
    end = explainer.tokenizer.eos_token_id
    brute = continuation_logprobs(explainer, embeds, [explainer.encode(" " + t) + [end] for t in titles])
    order = [titles[i] for i in torch.argsort(brute, descending=True).tolist()]
    found = title_beam_search(explainer, embeds, trie, beams=len(titles))  # beams >= titles: exhaustive
    assert [explainer.titles[items[0]] for _, items in found] == order
    assert np.allclose([score for score, _ in found], sorted(brute.tolist(), reverse=True), atol=1e-4)
    top = title_beam_search(explainer, embeds, trie, beams=3)
    assert all(set(explainer.titles[i] for i in items) <= set(titles) for _, items in top) and len(top) == 3


def test_metrics_by_hand():
    assert ranking_ndcg([1, 2, 3], [1, 2, 3]) == 1.0
    dcg = 1 / np.log2(2) + 3 / np.log2(3) + 2 / np.log2(4)  # gains: item 1 -> 3, 2 -> 2, 3 -> 1
    assert ranking_ndcg([3, 1, 2], [1, 2, 3]) == pytest.approx(dcg / (3 + 2 / np.log2(3) + 1 / np.log2(4)))
    assert history_coverage(' "Alpha" | beta | Gamma ray', ["alpha", "Beta", "Gamma"]) == pytest.approx(2 / 3)


def test_save_and_load_answer_the_same(setup, tmp_path):
    explainer, rows = explainer_for(setup, "H")
    explainer.save_pretrained(tmp_path / "rex")
    again = Explainer.from_pretrained(tmp_path / "rex")
    row = next(r for r in rows if r["task"] == "classify")
    embeds = [e.prompt_embeds(row["prompt"], row["history"], row["items"]) for e in (explainer, again)]
    assert torch.allclose(*embeds) and says_yes(explainer, embeds[0]) == pytest.approx(says_yes(again, embeds[1]))
    (tmp_path / "rex" / "connectors.safetensors").write_bytes(b"damaged")
    with pytest.raises(DataError, match="cannot be loaded"):
        Explainer.from_pretrained(tmp_path / "rex")


def test_a_recommender_of_another_catalogue_is_refused(setup):
    dataset, split, _ = setup
    other = SequentialRecommender(dataset.num_items + 1, SequentialConfig(hidden=16))
    with pytest.raises(DataError, match="scores .* items but the dataset has"):
        alignment_data(dataset, split, other, config("B"))


def test_commands_align_then_explain(setup, tmp_path, capsys):
    dataset, split, recommender = setup
    dataset.save(tmp_path / "data")
    recommender.save_pretrained(tmp_path / "target")
    tiny = ["backbone.name=null", "backbone.lora=null", "backbone.scratch.layers=1", "backbone.scratch.hidden=32",
            "backbone.scratch.heads=2", "backbone.scratch.kv_heads=2", "backbone.scratch.intermediate=64"]
    assert main(["baseline", "recexplainer", "--data", str(tmp_path / "data"), "--target", str(tmp_path / "target"),
                 "--out", str(tmp_path / "rex"), "--variant", "I", "--train-users", "20", "--eval-users", "5",
                 "train.max_steps=3", *tiny]) == 0
    assert "recexplainer-I imitating sasrec" in capsys.readouterr().out
    assert (tmp_path / "rex" / "results.json").is_file() and (tmp_path / "rex" / "train_curves.png").is_file()
    ids = list(dataset.items["item_id"])
    history = split.train[0][-4:]
    scores = recommender.score_items([history])[0]
    new = [i for i in np.argsort(-scores) if i not in set(history.tolist())]
    assert main(["explain", "--model", str(tmp_path / "rex"), "--history", ",".join(ids[i] for i in history),
                 "--item", ids[new[2]]]) == 0
    out = capsys.readouterr().out
    assert f"ranks 3 of {len(new)} new items: recommended" in out and "surrogate (I):" in out
    assert main(["explain", "--model", str(tmp_path / "rex"), "--history", ids[0], "--item", "nope"]) == 2
    assert "unknown item ids 'nope'" in capsys.readouterr().err
