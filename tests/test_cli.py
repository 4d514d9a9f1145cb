import json
import subprocess
import sys

from genrec.cli import main
from genrec.commands.run import QUICKSTART


def test_prepare_then_stats_json(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "sequential_data.txt").write_text("1 1 2 3\n2 2 3 1 2\n")
    assert main(["data", "prepare", "--format", "p5", "--path", str(tmp_path / "raw"), "--out", str(tmp_path / "ds"),
                 "--dedup"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", "--json", str(tmp_path / "ds")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (2, 3, 6)  # one repeated (2, 2) dropped


def test_bad_input_exits_2_with_a_message(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path)]) == 2
    assert "not a genrec dataset folder" in capsys.readouterr().err


def test_every_step_has_help():
    for step in ("data", "codebook", "tasks", "finetune", "recommend", "evaluate", "run", "demo"):
        out = subprocess.run([sys.executable, "-m", "genrec", step, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: genrec" in out.stdout, step


def _tiny_demo(folder, users: int = 200, steps: int = 4) -> list[str]:
    return ["demo", f"--run-dir={folder}", f"data.synthetic.users={users}", f"finetune.max_steps={steps}",
            "finetune.eval_steps=2", "finetune.eval_users=30", "sasrec.epochs=1", "sasrec.eval_users=50"]


def test_demo_is_the_quickstart_run_with_a_report(tmp_path, capsys):
    assert main(_tiny_demo(tmp_path / "demo", users=300, steps=6)) == 0
    out = capsys.readouterr().out
    assert "| markov chain |" in out and "| genrec |" in out and "next (held out)" in out
    assert "0.00% after the uniqueness step" in out and (tmp_path / "demo" / "semid" / "codes.json").is_file()
    # one code path: the same settings through `genrec run` find every stage done and report the same numbers
    run = _tiny_demo(tmp_path / "demo", users=300, steps=6)[1:]
    assert main(["run", str(QUICKSTART), *run]) == 0
    metrics = (tmp_path / "demo" / "results" / "metrics.md").read_text().split("\n\n", 1)[1].strip()
    assert metrics in out and metrics in capsys.readouterr().out


def test_recommend_cli(tmp_path, capsys):
    assert main(_tiny_demo(tmp_path)) == 0
    capsys.readouterr()
    model = str(tmp_path / "model")
    first, second = list(json.loads((tmp_path / "model" / "titles.json").read_text()))[:2]
    assert main(["recommend", "--model", model, "--history", f"{first},{second}", "-k", "5", "--json",
                 "--exclude-history"]) == 0
    rec = json.loads(capsys.readouterr().out)["recommendations"]
    ids = [r["item_id"] for r in rec]
    assert len(ids) == 5 and len(set(ids)) == 5 and not {first, second} & set(ids)
    assert all(r["title"] for r in rec) and [r["score"] for r in rec] == sorted((r["score"] for r in rec), reverse=True)
    assert main(["recommend", "--model", model, "--history", f"{first},nope", "-k", "5"]) == 2
    assert "unknown item id(s) nope" in capsys.readouterr().err
    assert main(["recommend", "--model", model, "--history", first, "-k", "100000"]) == 2
    assert "larger than the catalogue" in capsys.readouterr().err
    assert main(["recommend", "--model", model, "--history", " ", "-k", "5"]) == 2
    assert "history 1 is empty" in capsys.readouterr().err
    assert main(["evaluate", "--model", model, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m.json"),
                 "--beams", "10"]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["validity"] == 1.0 and {"recall@10", "ndcg@10", "mrr@20", "coverage@10"} <= set(metrics)
    assert main(["evaluate", "--model", "popularity", "--data", str(tmp_path / "data"), "--users", "7",
                 "--out", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["users"] == 7
