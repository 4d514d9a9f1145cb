"""Broken input of every kind through the CLI: a clear message, exit status 2, no traceback, nothing lost.

Fixtures are written by the tests themselves; nothing is shipped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from genrec.atomic import MARKER, folder_lock
from genrec.cli import main
from genrec.data import SyntheticConfig, make_synthetic
from genrec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart-lcrec.yaml"
TINY = ["data.synthetic.users=120", "baselines=[popularity]", "codebook.quantizer=rqkmeans", "codebook.levels=[16,8,8]",
        "finetune.max_steps=4", "finetune.eval_steps=2", "finetune.eval_users=20", "finetune.batch_size=16",
        "finetune.backbone.scratch={layers: 1, hidden: 32, heads: 2, kv_heads: 2, intermediate: 64}"]


def fails(capsys, argv: list[str], message: str) -> str:
    """Run the CLI; it must exit with 2 and say `message` (main() returning at all means no traceback)."""
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    return err


def raw_p5(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sequential_data.txt").write_text("1 1 2 3 4\n2 2 3 1 4\n3 4 1 2 3\n")
    return folder


# ---- genrec deletes only what it wrote ---------------------------------------------------------------------

def test_prepare_never_writes_over_its_input(tmp_path, capsys):
    raw = raw_p5(tmp_path / "raw")
    fails(capsys, ["data", "prepare", "--format", "p5", "--path", str(raw), "--out", str(raw)], "overlaps the input")
    fails(capsys, ["data", "prepare", "--format", "p5", "--path", str(raw), "--out", str(raw / "ds")],
          "overlaps the input")
    fails(capsys, ["data", "prepare", "--format", "p5", "--path", str(raw), "--out", str(tmp_path)],
          "overlaps the input")
    assert sorted(p.name for p in raw.iterdir()) == ["sequential_data.txt"]


def test_an_existing_folder_is_replaced_only_when_genrec_made_it_and_asked(tmp_path, capsys):
    raw, out = raw_p5(tmp_path / "raw"), tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    prepare = ["data", "prepare", "--format", "p5", "--path", str(raw), "--out", str(out)]
    fails(capsys, prepare, "genrec did not make it")
    assert (out / "notes.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    assert main([*prepare[:-1], str(fresh)]) == 0 and (fresh / MARKER).is_file()
    fails(capsys, [*prepare[:-1], str(fresh)], "pass --overwrite")
    assert main([*prepare[:-1], str(fresh), "--overwrite"]) == 0
    (tmp_path / "file").write_text("x")
    fails(capsys, [*prepare[:-1], str(tmp_path / "file")], "is a file")
    capsys.readouterr()


def test_tasks_and_codebook_outputs_are_guarded_too(tmp_path, capsys):
    make_synthetic(SyntheticConfig(users=60)).save(tmp_path / "data")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    fails(capsys, ["codebook", "build", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "mine")],
          "genrec did not make it")
    fails(capsys, ["tasks", "build", "--data", str(tmp_path / "data"), "--semid", str(tmp_path / "data"), "--out",
                   str(tmp_path / "mine")], "genrec did not make it")
    fails(capsys, ["evaluate", "--model", "popularity", "--data", str(tmp_path / "data"), "--out", str(tmp_path)],
          "is a folder")
    assert (tmp_path / "mine" / "keep.txt").is_file()


def test_run_names_stay_inside_runs_and_foreign_run_folders_are_refused(tmp_path, capsys):
    fails(capsys, ["run", str(QUICKSTART), "name=../.."], "must be a plain folder name")
    fails(capsys, ["run", str(QUICKSTART), "name=a/b"], "must be a plain folder name")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("x")
    fails(capsys, ["run", str(QUICKSTART), f"run_dir={tmp_path}", *TINY], "genrec did not make it")
    assert (tmp_path / "data" / "precious.txt").is_file()


# ---- broken models and codebooks fail at load ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run") / "run"
    assert main(["run", str(QUICKSTART), f"run_dir={folder}", *TINY]) == 0
    return folder


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_model_with_broken_weights_is_refused(tiny_run, tmp_path, capsys):
    model = _copy(tiny_run / "model", tmp_path / "nan")
    tensors = load_file(model / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = np.full_like(tensors[name], np.nan)
    save_file(tensors, model / "model.safetensors")
    item = json.loads((model / "titles.json").read_text()).popitem()[0]
    fails(capsys, ["recommend", "--model", str(model), "--history", item], "NaN or infinite")
    fails(capsys, ["evaluate", "--model", str(model), "--data", str(tiny_run / "data")], "NaN or infinite")
    truncated = _copy(tiny_run / "model", tmp_path / "cut")
    weights = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    fails(capsys, ["recommend", "--model", str(truncated), "--history", item], "the weights cannot be loaded")


def test_a_codebook_with_damaged_codes_is_refused(tiny_run, tmp_path, capsys):
    semid = _copy(tiny_run / "semid", tmp_path / "semid")
    tensors = load_file(semid / "model.safetensors")
    tensors["codes"][1] = tensors["codes"][0]  # two items, one ID
    save_file(tensors, semid / "model.safetensors")
    fails(capsys, ["tasks", "build", "--data", str(tiny_run / "data"), "--semid", str(semid), "--out",
                   str(tmp_path / "sft")], "two items share a semantic ID")
    tensors["codes"][1] = 99
    save_file(tensors, semid / "model.safetensors")
    fails(capsys, ["tasks", "build", "--data", str(tiny_run / "data"), "--semid", str(semid), "--out",
                   str(tmp_path / "sft")], "outside 0..")
    assert not (tmp_path / "sft").exists()


def test_a_saved_baseline_with_nan_weights_is_refused(tmp_path, capsys):
    import torch

    make_synthetic(SyntheticConfig(users=60)).save(tmp_path / "data")
    assert main(["baseline", "train", "--method", "sasrec", "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "sasrec"), "model.epochs=1", "model.hidden=16", "model.layers=1"]) == 0
    state = torch.load(tmp_path / "sasrec" / "model.pt")
    state[next(iter(state))].fill_(float("nan"))
    torch.save(state, tmp_path / "sasrec" / "model.pt")
    fails(capsys, ["evaluate", "--model", str(tmp_path / "sasrec"), "--data", str(tmp_path / "data")],
          "NaN or infinite")


def test_a_codebook_of_one_item_is_refused_and_nothing_is_saved(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "sequential_data.txt").write_text("1 1 1 1\n")
    assert main(["data", "prepare", "--format", "p5", "--path", str(raw), "--out", str(tmp_path / "ds")]) == 0
    fails(capsys, ["codebook", "build", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "semid"),
                   "--quantizer", "rqkmeans"], "a codebook needs at least 2")
    assert not (tmp_path / "semid").exists()


# ---- settings are checked before any work -------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["run", str(QUICKSTART), "evaluate.split=tset"], "evaluate.split: expected one of 'valid', 'test'"),
    (["run", str(QUICKSTART), "tasks.tasks=[seqrec,nope]"], "unknown task(s) nope"),
    (["run", str(QUICKSTART), "codebook.quantizer=pq"], "codebook.quantizer: expected one of"),
    (["run", str(QUICKSTART), "finetune.max_steps=abc"], "finetune.max_steps: expected an integer"),
    (["run", str(QUICKSTART), "finetune.learning_rate=-1"], "learning_rate must be positive"),
    (["run", str(QUICKSTART), "finetune.batch_size=0"], "batch_size must be positive"),
    (["run", str(QUICKSTART), "finetune.eval_steps=0"], "eval_steps must be positive"),
    (["run", str(QUICKSTART), "data.kcore=-1"], "kcore must be >= 0"),
    (["run", str(QUICKSTART), "data.format=parquet"], "data.format: unknown 'parquet'"),
    (["run", str(QUICKSTART), "baselines=[popularity,itemknn]"], "baselines[1]: expected one of"),
    (["run", str(QUICKSTART), "finetune.out=x"], "a run sets the finetune folders itself"),
    (["recommend", "--model", "m", "--history", "a", "-k", "0"], "-k and --beams must be at least 1"),
    (["recommend", "--model", "m", "--history", "a", "--beams", "0"], "-k and --beams must be at least 1"),
    (["recommend", "--model", "m"], "exactly one of --history or --users"),
    (["evaluate", "--model", "m", "--data", "d", "--users", "0"], "evaluate.users must be at least 1"),
    (["codebook", "build", "--data", "d", "--out", "o", "--collaborative-weight", "-1"], "must be >= 0"),
    (["finetune", "--data", "d", "--semid", "s", "--sft", "t", "--out", "o", "--report-to", "mlflow"],
     "report_to: unknown mlflow"),
    (["data", "stats", "--config", "missing.yaml"], "config file not found: missing.yaml"),
])
def test_bad_settings_fail_at_once(capsys, argv, message):
    started = time.perf_counter()
    fails(capsys, argv, message)
    assert time.perf_counter() - started < 60  # no work was started (import time only)


# ---- broken files of every format ---------------------------------------------------------------------------

def _write(folder: Path, files: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


@pytest.mark.parametrize(("fmt", "files", "message"), [
    ("movielens", {}, "not a MovieLens folder"),
    ("movielens", {"u.data": "", "u.item": "1|A|x||u|0\n", "u.genre": "Drama|0\n"}, "no interactions were read"),
    ("movielens", {"u.data": "1\t10\n", "u.item": "10|A|x||u|0\n", "u.genre": "Drama|0\n"}, "line 1 has 2 fields"),
    ("amazon", {"ratings_Beauty.csv": ""}, "the ratings file is empty"),
    ("amazon2023", {"All_Beauty.jsonl": '{"user_id": "u", "parent_asin": "B1", "timestamp": null}\n'},
     "timestamp None is not a number"),
    ("amazon2023", {"All_Beauty.jsonl": '{"user_id": "u", "parent_asin": "B1", "timestamp": NaN}\n'},
     "timestamp nan is not a number"),
    ("amazon2023", {"All_Beauty.jsonl": '{"user_id": "u", "parent_asin": "B1"}\n'}, "has no field 'timestamp'"),
    ("amazon2023", {"All_Beauty.jsonl": '{"user_id": "u", \n'}, "All_Beauty.jsonl"),
    ("recbole", {"x.inter": "user_id:token\titem_id:token\ttimestamp:float\nu\ti\tnan\n"},
     "line 2: timestamp 'nan' is not a number"),
    ("recbole", {"x.inter": "user_id:token\tproduct:token\nu\ti\n"}, "no 'item_id' column"),
    ("recbole", {"x.inter": b"user_id:token\titem_id:token\n\xff\xfe\ti\n"}, "x.inter"),
    ("lcrec", {"x.inter.json": '{"0": [0, 1, 2]}', "x.item.json": '{"0": {"title": "a"}, "0": {"title": "b"}}'},
     "key '0' appears twice"),
    ("lcrec", {"x.inter.json": '{"0": [0, 1'}, "invalid JSON"),
    ("p5", {"sequential_data.txt": "1 1 2 3\n", "datamaps.json": '{"user2id": {"a": "1"}}'}, "no id2item map"),
    ("p5", {"sequential_data.txt": "1 1 2 3\n", "Beauty_item_text.json": '{"1": {"title": "a"}, "1": {"title": "b"}}'},
     "key '1' appears twice"),
    ("p5", {"sequential_data.txt": "1 1 2 3\n1 2 3\n"}, "user '1' on line 2 already has line 1"),
])
def test_broken_files_name_the_file(tmp_path, capsys, fmt, files, message):
    raw = _write(tmp_path / "raw", files)
    fails(capsys, ["data", "prepare", "--format", fmt, "--path", str(raw), "--out", str(tmp_path / "out")], message)
    assert not (tmp_path / "out").exists()


def test_a_truncated_dataset_json_names_the_file(tmp_path, capsys):
    make_synthetic(SyntheticConfig(users=60)).save(tmp_path / "data")
    (tmp_path / "data" / "dataset.json").write_text('{"format_version": ')
    fails(capsys, ["data", "stats", str(tmp_path / "data")], "dataset.json: invalid JSON")


# ---- locks and resume -----------------------------------------------------------------------------------------

def test_a_run_folder_is_locked_and_a_stale_lock_is_taken_over(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder.mkdir()
        (folder / ".lock").write_text(str(holder.pid))
        with pytest.raises(DataError, match=f"in use by process {holder.pid}"):
            with folder_lock(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(folder) as lock:  # the holder is gone: its lock is stale
        assert lock.read_text() == str(os.getpid())
    assert not (folder / ".lock").exists()


def _run(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "genrec", "run", str(QUICKSTART), f"run_dir={folder}", *TINY,
                             "finetune.max_steps=8", "finetune.eval_steps=2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _results(folder: Path) -> tuple[str, str, str]:
    return tuple((folder / f).read_text() for f in ("results/metrics.json", "semid/codes.json", "data/dataset.json"))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference") / "run"
    process = _run(folder)
    assert process.wait() == 0, process.stderr.read()[-3000:]
    return _results(folder)


KILL_POINTS = {  # the run is killed (SIGKILL) as soon as this holds
    "after data": lambda f: (f / "data" / "stage.json").is_file(),
    "after the codebook": lambda f: (f / "semid" / "stage.json").is_file(),
    "mid finetune": lambda f: (f / "model" / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file(),
    "before results": lambda f: (f / "model" / "stage.json").is_file(),
}


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_kill_and_resume_give_identical_results(reference_run, tmp_path, kill_point):
    folder = tmp_path / "killed"
    process = _run(folder)
    deadline = time.time() + 300
    while not KILL_POINTS[kill_point](folder):
        if process.poll() is not None:
            pytest.skip(f"the run finished before the kill point {kill_point!r} was seen")
        assert time.time() < deadline, "kill point not reached"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (folder / ".lock").is_file()  # left by the killed run: stale, taken over below
    second = _run(folder)
    assert second.wait() == 0, second.stderr.read()[-3000:]
    assert _results(folder) == reference_run


def test_an_incomplete_checkpoint_is_ignored(tiny_run, tmp_path, caplog):
    import logging

    from genrec.config import load_config
    from genrec.finetune import FinetuneConfig, finetune

    folder = _copy(tiny_run, tmp_path / "run")
    cfg = load_config(FinetuneConfig, None, [f"data={folder / 'data'}", f"semid={folder / 'semid'}",
                                             f"sft={folder / 'sft'}", f"out={tmp_path / 'model'}", "max_steps=4",
                                             "eval_steps=2", "eval_users=20", "batch_size=16",
                                             "backbone.scratch={layers: 1, hidden: 32, heads: 2, kv_heads: 2, "
                                             "intermediate: 64}"])
    finetune(cfg)
    broken = tmp_path / "model" / "checkpoints" / "checkpoint-6"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="genrec.finetune"):
        summary = finetune(load_config(FinetuneConfig, None, [*_overrides(cfg), "max_steps=6", "resume=true"]))
    assert summary["steps"] == 6 and "checkpoint-6 is incomplete" in caplog.text
    assert (broken / "trainer_state.json").is_file()  # written anew by the resumed run
    with pytest.raises(DataError, match="no complete checkpoint of this configuration"):
        finetune(load_config(FinetuneConfig, None, [*_overrides(cfg), "learning_rate=0.01", "resume=true"]))


def _overrides(cfg) -> list[str]:
    from dataclasses import asdict

    return [f"{k}={json.dumps(v)}" for k, v in asdict(cfg).items()]
