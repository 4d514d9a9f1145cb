"""Training throughput and peak memory of the two backbones on the demo's SFT data, one process.

    python bench/finetune.py [--run runs/quickstart] [--steps 30] [--json bench/results/finetune.json]

Needs the folders `genrec demo` writes (data, semid, sft). Each backbone runs in its own subprocess so its
peak resident memory is its own: the from-scratch LLaMA-style model of recipes/finetune/synthetic-scratch.yaml
(full training) and SmolLM2-135M-Instruct with LoRA (r=16, trainable code-token rows) from the offline GGUF.
Both train through genrec's trainer (trl's SFTTrainer, loss on the completion positions), as `genrec finetune` does.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BACKBONES = {
    "scratch (2 layers, width 128, full)": {
        "backbone": {"scratch": {"layers": 2, "hidden": 128, "heads": 4, "kv_heads": 4, "intermediate": 384}},
        "batch_size": 64},
    "SmolLM2-135M + LoRA r=16": {
        "backbone": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "lora": {"r": 16, "alpha": 32}},
        "batch_size": 8},
}


def measure(run: Path, spec: dict, steps: int) -> dict:
    """Train `steps` steps in this process; samples/s and tokens/s from the steps after the first."""
    import datasets
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig

    from genrec.finetune import RankingSFTTrainer
    from genrec.model import BackboneConfig, GenRecModel
    from semid.tokenizer import SemanticIdTokenizer

    torch.set_num_threads(2)
    semid = SemanticIdTokenizer.from_pretrained(run / "semid")
    train = datasets.load_from_disk(str(run / "sft"))["train"].shuffle(seed=0)
    train = train.select_columns(["prompt", "completion"])
    start = time.perf_counter()
    genrec = GenRecModel.create(BackboneConfig(**spec["backbone"]), semid, texts=list(train["prompt"][:20000]))
    load_seconds = time.perf_counter() - start
    marks = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append(time.perf_counter())

    args = SFTConfig(output_dir=str(run / "bench-finetune"), max_steps=steps,
                     per_device_train_batch_size=spec["batch_size"], learning_rate=1e-3, logging_steps=steps,
                     save_strategy="no", report_to="none", max_length=192,
                     completion_only_loss=True, disable_tqdm=True, dataloader_num_workers=0, bf16=False)
    trainer = RankingSFTTrainer(model=genrec.model, args=args, train_dataset=train,
                                processing_class=genrec.tokenizer, callbacks=[Clock()], genrec=genrec,
                                ranking_rows=train.select(range(1)), beams=1)
    trainer.train()
    batches = list(trainer.get_train_dataloader())[1:steps]
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    seconds = marks[-1] - marks[0]
    trainable = sum(p.numel() for p in genrec.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in genrec.model.parameters())
    return {"batch_size": spec["batch_size"], "steps_timed": steps - 1,
            "seconds_per_step": round(seconds / (steps - 1), 3),
            "samples_per_s": round(spec["batch_size"] * (steps - 1) / seconds, 1),
            "tokens_per_s": round(tokens / seconds),
            "parameters": total, "trainable_parameters": trainable, "load_seconds": round(load_seconds, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="runs/quickstart")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json", default="bench/results/finetune.json")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:  # the child process
        print(json.dumps(measure(Path(args.run), BACKBONES[args.only], args.steps)))
        return
    results = {}
    for name in BACKBONES:
        command = [sys.executable, __file__, "--run", args.run, "--steps", str(args.steps), "--only", name]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, results[name])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print("\n| backbone | parameters (trainable) | batch | s / step | samples / s | tokens / s | peak memory |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        params = f"{r['parameters'] / 1e6:.1f} M ({r['trainable_parameters'] / 1e6:.2f} M)"
        print(f"| {name} | {params} | {r['batch_size']} | {r['seconds_per_step']} | {r['samples_per_s']} | "
              f"{r['tokens_per_s']:,} | {r['peak_rss_mb']:,} MB |")


if __name__ == "__main__":
    main()
