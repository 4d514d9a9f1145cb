import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import genrec.pipeline
from genrec.cli import main
from genrec.config import load_config
from genrec.data import DataError, RecDataset
from genrec.data.text import make_item
from genrec.finetune import FinetuneConfig
from genrec.pipeline import Run, RunConfig
from semid.codebook import reference_tokenizer

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize("recipe", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_run_recipe_parses_and_says_how_to_run_it(recipe):
    assert recipe.read_text().startswith(f"# genrec run recipes/{recipe.name}")
    load_config(RunConfig, recipe)


@pytest.mark.parametrize("recipe", sorted((RECIPES / "finetune").glob("*.yaml")), ids=lambda p: p.name)
def test_every_finetune_recipe_parses(recipe):
    assert recipe.read_text().startswith("# genrec finetune --config recipes/finetune/")
    load_config(FinetuneConfig, recipe)


def test_typos_fail_before_any_work():
    with pytest.raises(DataError, match="quickstart-lcrec.yaml: codebook: unknown key"):
        load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", ["codebook.levelz=[4]"])
    with pytest.raises(DataError, match="codebook.collaborative_weight must be >= 0"):
        load_config(RunConfig, RECIPES / "yelp.yaml", ["codebook.collaborative_weight=-1"])
    assert load_config(RunConfig, RECIPES / "yelp.yaml", ["codebook.quantizer=opq"]).codebook.collaborative == "sasrec"


TINY = ["data.synthetic.users=150", "baselines=[popularity,markov]", "codebook.quantizer=rqkmeans",
        "codebook.levels=[16,8,8]",
        "finetune.max_steps=4", "finetune.eval_steps=2", "finetune.eval_users=20", "finetune.batch_size=16",
        "finetune.backbone.scratch={layers: 1, hidden: 32, heads: 2, kv_heads: 2, intermediate: 64}"]


def _cached_stages(caplog, recipe: Path, overrides: list[str]) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="genrec.pipeline"):
        Run(load_config(RunConfig, recipe, overrides)).run()
    return [r.message.split(":")[0] for r in caplog.records if r.message.endswith("cached")]


def test_run_caches_stages_and_reruns_only_what_changed(tmp_path, caplog, capsys):
    overrides = [f"run_dir={tmp_path / 'run'}", *TINY]
    assert main(["run", str(RECIPES / "quickstart-lcrec.yaml"), *overrides]) == 0
    metrics = json.loads((tmp_path / "run" / "results" / "metrics.json").read_text())
    assert set(metrics) == {"genrec", "popularity", "markov chain"} and metrics["genrec"]["validity"] == 1.0
    report = (tmp_path / "run" / "results" / "metrics.md").read_text()
    assert "| genrec |" in report
    timings = json.loads((tmp_path / "run" / "results" / "timings.json").read_text())
    stage = json.loads((tmp_path / "run" / "model" / "stage.json").read_text())
    assert timings["genrec"] == {"train_seconds": stage["seconds"], "peak_rss_mb": stage["peak_rss_mb"]}
    assert stage["peak_rss_mb"] > 0
    assert f"genrec {stage['seconds'] / 60:.1f} min, peak {stage['peak_rss_mb']:,} MB" in report
    assert "training (wall time, peak resident memory): genrec" in capsys.readouterr().out
    assert (tmp_path / "run" / "results" / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert _cached_stages(caplog, RECIPES / "quickstart-lcrec.yaml", overrides) == [
        "data", "semid", "sft", "model", "results"]
    assert _cached_stages(caplog, RECIPES / "quickstart-lcrec.yaml", [*overrides, "tasks.max_history=5"]) == [
        "data", "semid"]
    sample = [*overrides, "tasks.max_history=5", "evaluate.users=25"]  # a user sample reruns only the results
    assert _cached_stages(caplog, RECIPES / "quickstart-lcrec.yaml", sample) == ["data", "semid", "sft", "model"]
    sampled = json.loads((tmp_path / "run" / "results" / "metrics.json").read_text())
    assert {m["users"] for m in sampled.values()} == {25}
    assert "a random sample of 25 users" in (tmp_path / "run" / "results" / "metrics.md").read_text()
    unseen = [*sample, "evaluate.exclude_history=true"]
    assert _cached_stages(caplog, RECIPES / "quickstart-lcrec.yaml", unseen) == ["data", "semid", "sft", "model"]
    excluded = json.loads((tmp_path / "run" / "results" / "metrics.json").read_text())
    assert all(m["exclude_history"] for m in excluded.values())
    assert excluded["markov chain"]["recall@10"] >= sampled["markov chain"]["recall@10"]  # no repeats in this data


def test_stage_keys_cover_defaults_not_only_the_recipe(tmp_path, caplog, monkeypatch):
    overrides = [f"run_dir={tmp_path / 'run'}", *TINY]
    Run(load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", overrides)).run()
    default = FinetuneConfig().history_head
    recipe = RECIPES / "quickstart-lcrec.yaml"
    assert _cached_stages(caplog, recipe, [*overrides, f"finetune.history_head={default}"]) == [
        "data", "semid", "sft", "model", "results"]  # writing out a default changes nothing

    @dataclasses.dataclass
    class NewDefault(FinetuneConfig):  # as if a release changed the default
        history_head: str = "full" if default == "codes" else "codes"

    monkeypatch.setattr(genrec.pipeline, "FinetuneConfig", NewDefault)
    assert _cached_stages(caplog, RECIPES / "quickstart-lcrec.yaml", overrides) == ["data", "semid", "sft"]


def test_reference_codes_with_collisions_become_unique():
    items = [make_item(f"i{k}") for k in range(4)]
    for item, codes in zip(items, [["<a_1>", "<b_2>"], ["<a_1>", "<b_2>"], ["<a_0>", "<b_0>"], ["<a_1>", "<b_0>"]]):
        item["reference_codes"] = codes
    inter = pd.DataFrame({"user_id": ["u"] * 4, "item_id": [f"i{k}" for k in range(4)]})
    tokenizer, stats = reference_tokenizer(RecDataset.from_records(items, inter, "t"))
    assert stats["collision_rate_before"] == pytest.approx(0.25) and stats["items_moved"] == 1
    assert len({tokenizer.item_to_tokens(i) for i in range(4)}) == 4
    assert tokenizer.item_to_tokens(2) == "<a_0><b_0>"  # items without a collision keep their codes


def test_collaborative_codes_are_rebuilt_when_their_vectors_change(tmp_path, caplog):
    vectors = tmp_path / "cf.npy"
    overrides = [f"run_dir={tmp_path / 'run'}", *TINY, "codebook.quantizer=rqvae", "codebook.train.epochs=2",
                 f"codebook.collaborative={vectors}"]

    def semid_cached() -> bool:
        caplog.clear()
        run = Run(load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", overrides))
        with caplog.at_level(logging.INFO, logger="genrec.pipeline"):
            run.stage_data()
            run.stage_semid()
        return "semid: cached" in caplog.messages

    Run(load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", overrides)).stage_data()
    items = RecDataset.load(tmp_path / "run" / "data").num_items
    rng = np.random.default_rng(0)
    np.save(vectors, rng.normal(size=(items, 8)))
    assert not semid_cached()
    stats = json.loads((tmp_path / "run" / "semid" / "stats.json").read_text())
    assert stats["unique_codes"] == items and 0.0 <= stats["transition_prefix_share"] <= 1.0
    assert semid_cached()
    np.save(vectors, rng.normal(size=(items, 8)))  # same name, other vectors: the codes are stale
    assert not semid_cached()
    np.save(vectors, rng.normal(size=(items - 1, 8)))
    with pytest.raises(DataError, match=r"cf\.npy: collaborative embeddings have shape"):
        semid_cached()


def test_own_sasrec_is_one_stage_for_the_baseline_and_the_collaborative_codes(tmp_path, caplog):
    from baselines.sequential import SequentialRecommender
    from genrec.data import leave_one_out
    from genrec.evaluate import evaluate

    run_dir = tmp_path / "run"
    overrides = [f"run_dir={run_dir}", *TINY, "baselines=[popularity,sasrec]", "codebook.quantizer=rqvae",
                 "codebook.train.epochs=2", "sasrec.epochs=2", "sasrec.eval_users=50"]
    recipe = RECIPES / "quickstart-lcrec.yaml"
    collaborative = [*overrides, "codebook.collaborative=sasrec"]
    assert "sasrec" not in _cached_stages(caplog, recipe, collaborative)
    dataset = RecDataset.load(run_dir / "data")
    saved = SequentialRecommender.from_pretrained(run_dir / "sasrec")
    expected = evaluate(saved, dataset, "test", splits=leave_one_out(dataset))
    reported = json.loads((run_dir / "results" / "metrics.json").read_text())["sasrec"]
    assert reported["recall@10"] == expected["recall@10"] and reported["ndcg@10"] == expected["ndcg@10"]

    # a new evaluation reuses the trained SASRec; new SASRec weights rebuild the codes that were made from them
    assert _cached_stages(caplog, recipe, [*collaborative, "evaluate.users=25"]) == [
        "data", "sasrec", "semid", "sft", "model"]
    assert _cached_stages(caplog, recipe, [*collaborative, "sasrec.epochs=1"]) == ["data"]
    # text-only codes do not depend on it: only the SASRec and the results rerun
    _cached_stages(caplog, recipe, overrides)
    assert _cached_stages(caplog, recipe, [*overrides, "sasrec.epochs=1"]) == ["data", "semid", "sft", "model"]
    assert "sasrec" not in _cached_stages(caplog, recipe, [*overrides, "baselines=[popularity]"])
    # SASRec reads the interactions only: a change elsewhere in the data keeps it
    _cached_stages(caplog, recipe, overrides)
    assert _cached_stages(caplog, recipe, [*overrides, "data.name=renamed"]) == ["sasrec"]


def test_parallel_head_with_opq_codes_and_fusion_adds_a_row_beside_genrec(tmp_path, capsys):
    run_dir = tmp_path / "run"
    overrides = [f"run_dir={run_dir}", *TINY, "baselines=[sasrec]", "codebook.quantizer=opq",
                 "codebook.levels=[16,16,16,16,16,16]", "finetune.head=parallel", "finetune.max_steps=12",
                 "finetune.eval_steps=6", "sasrec.epochs=2", "sasrec.eval_users=50", "fusion=sasrec"]
    metrics = Run(load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", overrides)).run()
    assert list(metrics) == ["genrec", "sasrec", "genrec + sasrec"]
    fused = metrics["genrec + sasrec"]
    assert fused["fusion_weight"] in {float(w) for w in fused["fusion_valid_ndcg@10"]}
    assert metrics["genrec"]["validity"] == 1.0 and fused["validity"] == 1.0
    assert json.loads((run_dir / "model" / "genrec.json").read_text())["head"] == "parallel"
    out = tmp_path / "fused.json"  # the same blend from `genrec evaluate --fuse-with`, on the saved models
    assert main(["evaluate", "--model", str(run_dir / "model"), "--data", str(run_dir / "data"), "--fuse-with",
                 str(run_dir / "sasrec"), "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert again["fusion_weight"] == fused["fusion_weight"] and again["ndcg@10"] == fused["ndcg@10"]
    assert main(["evaluate", "--model", str(run_dir / "model"), "--data", str(run_dir / "data"), "--fuse-with",
                 "popularity"]) != 0
    assert "popularity does not score every item" in capsys.readouterr().err
    with pytest.raises(DataError, match="finetune.head: parallel"):
        load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", [*TINY, "fusion=sasrec"])


def test_sasrec_settings_are_checked_before_any_work():
    with pytest.raises(DataError, match="sasrec: unknown key"):
        load_config(RunConfig, RECIPES / "quickstart-lcrec.yaml", ["sasrec.epoch=3"])
