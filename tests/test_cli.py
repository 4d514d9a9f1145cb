import json
import subprocess
import sys

from genrec.cli import main


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


def test_demo_runs(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| markov chain |" in out and "next (held out)" in out
    assert (tmp_path / "data" / "dataset.json").is_file() and (tmp_path / "results" / "metrics.md").is_file()
    assert "0.0% after resolution" in out and (tmp_path / "semid" / "codes.json").is_file()
