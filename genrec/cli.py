"""`genrec` console script: one subcommand per step of the pipeline.

    genrec data prepare --format p5 --path data/beauty --out runs/beauty/data
    genrec codebook build --data runs/beauty/data --out runs/beauty/semid
    genrec tasks build --data runs/beauty/data --semid runs/beauty/semid --out runs/beauty/sft
    genrec finetune --config recipes/finetune/synthetic-scratch.yaml [key=value ...]
    genrec recommend --model runs/demo/model --history ID,ID -k 10
    genrec evaluate --model runs/demo/model --data runs/demo/data
    genrec run recipes/quickstart.yaml
    genrec demo
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from baselines import METHODS

from .data import LOADERS, DataError


def _prepare(args) -> int:
    from .data import dataset_stats, format_stats, load_format, preprocess

    dataset = load_format(args.format, args.path, item_text=args.item_text, name=args.name)
    dataset = preprocess(dataset, kcore_k=args.kcore, dedup=args.dedup)
    dataset.save(args.out)
    print(format_stats(dataset_stats(dataset)))
    print(f"saved to {args.out}")
    return 0


def _stats(args) -> int:
    from .data import RecDataset, dataset_stats, format_stats

    stats = dataset_stats(RecDataset.load(args.dir))
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _synthetic(args) -> int:
    from .data import SyntheticConfig, dataset_stats, format_stats, make_synthetic

    dataset = make_synthetic(SyntheticConfig(users=args.users, seed=args.seed))
    dataset.save(args.out)
    print(format_stats(dataset_stats(dataset)))
    print(f"saved to {args.out}")
    return 0


def _download(args) -> int:
    from .data.download import download_amazon2023, download_movielens

    folder = (download_movielens if args.source == "movielens" else download_amazon2023)(args.name, args.out)
    fmt = "movielens" if args.source == "movielens" else "amazon2023"
    print(f"downloaded to {folder}; next: genrec data prepare --format {fmt} --path {folder} --out DIR")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed, train_steps=args.train_steps, users=args.users,
             sasrec_epochs=args.sasrec_epochs)
    return 0


def _codebook_build(args) -> int:
    from dataclasses import asdict

    from semid.codebook import CodebookConfig, build_codebook, plot_usage
    from semid.rqvae import RQVAETrainConfig

    from .data import RecDataset

    dataset = RecDataset.load(args.data)
    cfg = CodebookConfig(quantizer=args.quantizer, levels=tuple(int(v) for v in args.levels.split(",")),
                         seed=args.seed, fields=tuple(args.fields.split(",")), missing_text=args.missing_text,
                         encoder=args.encoder, encoder_kind=args.encoder_kind,
                         train=RQVAETrainConfig(epochs=args.epochs), uniform_mapping=not args.no_uniform_mapping,
                         collaborative=args.collaborative, collaborative_weight=args.collaborative_weight)
    embeddings = None
    if args.embeddings:
        import numpy as np

        embeddings = np.load(args.embeddings)
    tokenizer, stats = build_codebook(dataset, cfg, cache_dir=args.cache, embeddings=embeddings)
    out = Path(args.out)
    tokenizer.save_pretrained(out)
    stats["config"] = asdict(cfg)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    plot_usage(tokenizer.codes, tokenizer.level_sizes, out / "code_usage.png")
    print(f"{stats['items']:,} items -> {stats['unique_codes']:,} unique IDs of {len(stats['level_sizes'])} codes "
          f"({'x'.join(map(str, stats['level_sizes']))}) with {cfg.quantizer} in {stats['seconds']:.0f} s")
    print(f"collisions: {stats['collision_rate_before']:.2%} from the quantizer, "
          f"{stats['collision_rate_after_uniform_mapping']:.2%} after uniform mapping, {stats['collision_rate']:.2%} "
          f"after the uniqueness step ({stats['items_moved']} items moved)")
    print("code usage per level: " + ", ".join(f"{u:.0%}" for u in stats["level_usage"])
          + "; perplexity: " + ", ".join(f"{p:.0f}" for p in stats["level_perplexity"])
          + f"; reconstruction MSE {stats['recon_mse']:.4f}")
    print(f"consecutive items sharing their first code: {stats['transition_prefix_share']:.1%}")
    print(f"saved to {out} (stats.json, code_usage.png)")
    return 0


def _tasks_build(args) -> int:
    from semid.tokenizer import SemanticIdTokenizer
    from tasks import TaskConfig, build_sft, save_sft, summary
    from tasks.build import check_tasks

    from .data import RecDataset

    cfg = TaskConfig(tasks=check_tasks([t for t in args.tasks.split(",") if t]), max_history=args.max_history,
                     history_loss=args.history_loss, sample_per_task=args.sample_per_task, seed=args.seed,
                     chat=args.chat, all_templates=args.all_templates, query_model=args.query_model,
                     preference_model=args.preference_model, cache_dir=args.cache)
    semid = SemanticIdTokenizer.from_pretrained(args.semid)
    sft = build_sft(RecDataset.load(args.data), semid, cfg)
    save_sft(sft, args.out, cfg, semid)
    counts = summary(sft)
    tasks = sorted({t for part in counts.values() for t in part})
    print(f"{'task':<12}" + "".join(f"{name:>10}" for name in counts))
    for task in tasks:
        print(f"{task:<12}" + "".join(f"{counts[name].get(task, 0):>10,}" for name in counts))
    print(f"saved to {args.out} (datasets.load_from_disk)")
    return 0


def _finetune(args) -> int:
    from .config import load_config
    from .finetune import FinetuneConfig, finetune

    cfg = load_config(FinetuneConfig, args.config, args.overrides)
    summary = finetune(cfg)
    print(f"trained {summary['steps']} steps in {summary['train_seconds'] or 0:.0f} s; best validation "
          f"NDCG@10 {summary.get('eval_ndcg@10', 0):.4f}, Recall@10 {summary.get('eval_recall@10', 0):.4f}")
    print(f"saved to {cfg.out} (train_log.jsonl, train_curves.png)")
    return 0


def _recommend(args) -> int:
    import numpy as np

    from .model import GenRecModel

    model = GenRecModel.from_pretrained(args.model)
    index = {item_id: i for i, item_id in enumerate(model.semid.item_ids)}
    if args.history is not None:
        lines = [args.history]
    else:
        lines = [line.strip() for line in Path(args.users).read_text().splitlines() if line.strip()]
    histories = []
    for number, line in enumerate(lines, start=1):
        ids = [i for i in line.replace(",", " ").split() if i]
        unknown = [i for i in ids if i not in index]
        if not ids:
            raise DataError(f"history {number} is empty; give at least one item id")
        if unknown:
            raise DataError(f"history {number}: unknown item id(s) {', '.join(unknown[:5])}")
        histories.append(np.array([index[i] for i in ids]))
    if args.k > model.semid.num_items:
        raise DataError(f"-k {args.k} is larger than the catalogue ({model.semid.num_items} items)")
    exclude = histories if args.exclude_history else None
    prompts = [model.history_prompt(h) for h in histories]
    items, scores = model.recommend_prompts(prompts, k=args.k, beams=args.beams, exact=args.exact, exclude=exclude)
    titles = model.titles
    for number, (row, row_scores) in enumerate(zip(items, scores), start=1):
        recs = [{"item_id": model.semid.item_ids[i], "score": float(s), "title": titles.get(model.semid.item_ids[i])}
                for i, s in zip(row, row_scores) if i >= 0]
        if args.json:
            print(json.dumps({"history": lines[number - 1], "recommendations": recs}))
            continue
        print(f"history {number}: {lines[number - 1]}")
        for rank, rec in enumerate(recs, start=1):
            print(f"  {rank:>2}. {rec['item_id']}  {rec['score']:.3f}  {rec['title'] or ''}")
    return 0


def _evaluate(args) -> int:
    from .data import RecDataset, leave_one_out
    from .evaluate import TABLE_KEYS, PopularityRecommender, evaluate, metrics_table

    dataset = RecDataset.load(args.data)
    splits = leave_one_out(dataset, args.max_history)
    if args.model == "popularity":
        model, name = PopularityRecommender(splits.train, dataset.num_items), "popularity"
    elif (Path(args.model) / "baseline.json").is_file():
        from baselines.methods import load

        model = load(args.model)
        name = f"{model.method} ({args.model})"
    else:
        from .model import GenRecModel

        model, name = GenRecModel.from_pretrained(args.model), f"genrec ({args.model})"
        if model.semid.item_ids != list(dataset.items["item_id"]):
            raise DataError(f"{args.model} was trained on other items than {args.data}")
        model.decode_options = {"beams": args.beams, "exact": args.exact}
    result = evaluate(model, dataset, args.split, args.max_history, splits=splits, users=args.users,
                      exclude_history=args.exclude_history)
    print(f"{args.split}: {result['users']:,} users, full ranking over {dataset.num_items:,} items")
    print(metrics_table({name: result, **{f"  {g}": m for g, m in result["groups"].items()}}, TABLE_KEYS))
    print(f"MRR@20 {result['mrr@20']:.4f}; validity {result['validity']:.3f}; coverage@10 {result['coverage@10']:.3f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"saved to {args.out}")
    return 0


def _baseline_train(args) -> int:
    import time

    from baselines.methods import train

    from .config import apply_overrides
    from .data import RecDataset, leave_one_out

    dataset = RecDataset.load(args.data)
    started = time.perf_counter()
    model = train(args.method, dataset, leave_one_out(dataset, args.max_history), apply_overrides({}, args.overrides),
                  args.cache or Path(args.out) / "cache")
    model.extra["train_seconds"] = round(time.perf_counter() - started, 1)
    model.save_pretrained(args.out)
    best = max(h["valid_ndcg@10"] for h in model.history)
    print(f"{args.method}: {len(model.history)} epochs in {model.extra['train_seconds']:.0f} s, best validation "
          f"NDCG@10 {best:.4f}; saved to {args.out} (evaluate with: genrec evaluate --model {args.out} "
          f"--data {args.data})")
    return 0


def _run(args) -> int:
    from .config import load_config
    from .evaluate import TABLE_KEYS, metrics_table
    from .pipeline import Run, RunConfig

    cfg = load_config(RunConfig, args.recipe, args.overrides)
    results = Run(cfg).run()
    print(metrics_table(results, TABLE_KEYS))
    print(f"run folder: {cfg.folder()} (results/metrics.json, results/metrics.md)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genrec", description="Generative recommendation with semantic IDs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    steps = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = steps.add_parser("data", help="read public formats into a canonical dataset; statistics")
    data_cmds = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = data_cmds.add_parser("prepare", help="read a public format, filter, save a dataset folder")
    prepare.add_argument("--format", required=True, choices=sorted(LOADERS))
    prepare.add_argument("--path", required=True, help="the dataset folder (or its main file)")
    prepare.add_argument("--out", required=True, help="output dataset folder")
    prepare.add_argument("--item-text", help="item text file, where the format keeps text apart")
    prepare.add_argument("--kcore", type=int, default=0, help="iterative k-core filter (0: none)")
    prepare.add_argument("--dedup", action="store_true", help="keep only the first of repeated user-item pairs")
    prepare.add_argument("--name", help="dataset name (default: from the path)")
    prepare.set_defaults(run=_prepare)
    stats = data_cmds.add_parser("stats", help="statistics of a prepared dataset folder")
    stats.add_argument("dir")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(run=_stats)
    synth = data_cmds.add_parser("synthetic", help="write the embedded synthetic default dataset")
    synth.add_argument("--out", required=True)
    synth.add_argument("--users", type=int, default=3000)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_synthetic)
    download = data_cmds.add_parser("download", help="fetch a public dataset (needs internet)")
    download.add_argument("source", choices=["movielens", "amazon2023"])
    download.add_argument("name", help="ml-100k / ml-1m / ml-latest-small / ml-latest, or an Amazon 2023 "
                                       "category such as All_Beauty")
    download.add_argument("--out", required=True)
    download.set_defaults(run=_download)

    codebook = steps.add_parser("codebook", help="step 1: item codebook (semantic IDs) from item text")
    codebook_cmds = codebook.add_subparsers(dest="codebook_command", required=True, metavar="ACTION")
    build = codebook_cmds.add_parser("build", help="embed item text, train a quantizer, write unique semantic IDs")
    build.add_argument("--data", required=True, help="a dataset folder from `genrec data prepare`")
    build.add_argument("--out", required=True, help="output folder for the SemanticIdTokenizer")
    build.add_argument("--quantizer", choices=["rqvae", "rqkmeans"], default="rqvae")
    build.add_argument("--levels", default="256,256,256", help="codebook size per level")
    build.add_argument("--epochs", type=int, default=300, help="RQ-VAE epochs at most (early stopping)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--fields", default="title,brand,categories,description", help="item fields in the text")
    build.add_argument("--missing-text", choices=["placeholder", "error"], default="placeholder",
                       help="items without text: their id stands in (counted), or fail")
    build.add_argument("--encoder", default="sentence-transformers/all-MiniLM-L6-v2")
    build.add_argument("--encoder-kind", choices=["sentence-transformers", "mean-pool"],
                       default="sentence-transformers",
                       help="mean-pool: any transformers model, masked mean of the last layer (LC-Rec)")
    build.add_argument("--embeddings", help="a precomputed (items, dim) .npy instead of encoding text")
    build.add_argument("--cache", default=str(Path.home() / ".cache" / "genrec" / "embeddings"),
                       help="embedding cache folder")
    build.add_argument("--no-uniform-mapping", action="store_true", help="skip LC-Rec's Sinkhorn step")
    build.add_argument("--collaborative", help="LETTER's collaborative regularisation: item vectors from a trained "
                                               "sequential model (a saved baseline folder or an (items, d) .npy)")
    build.add_argument("--collaborative-weight", type=float, default=1.0, help="its weight (LETTER's alpha)")
    build.set_defaults(run=_codebook_build)

    tasks = steps.add_parser("tasks", help="multi-task SFT data from a dataset and its semantic IDs")
    tasks_cmds = tasks.add_subparsers(dest="tasks_command", required=True, metavar="ACTION")
    tbuild = tasks_cmds.add_parser("build", help="write train / valid / test SFT data (datasets.save_to_disk)")
    tbuild.add_argument("--data", required=True, help="a dataset folder from `genrec data prepare`")
    tbuild.add_argument("--semid", required=True, help="a folder from `genrec codebook build`")
    tbuild.add_argument("--out", required=True)
    tbuild.add_argument("--tasks", default="seqrec,item2index,index2item,fusion,search",
                        help="comma-separated, from: seqrec, item2index, index2item, fusion, search, preference")
    tbuild.add_argument("--max-history", type=int, default=20)
    tbuild.add_argument("--history-loss", action="store_true",
                        help="seqrec: one row per window of --max-history items, every item in it a target")
    tbuild.add_argument("--sample-per-task", type=int, default=None, help="at most N training rows per task")
    tbuild.add_argument("--seed", type=int, default=0)
    tbuild.add_argument("--chat", action="store_true", help="prompts as chat messages (for chat models)")
    tbuild.add_argument("--all-templates", action="store_true",
                        help="one evaluation row per template and user (LC-Rec's averaged variant)")
    tbuild.add_argument("--query-model", help="a local causal LM that writes the search queries, e.g. smollm2")
    tbuild.add_argument("--preference-model", help="a local causal LM that writes preference sentences")
    tbuild.add_argument("--cache", default=str(Path.home() / ".cache" / "genrec" / "generated"),
                        help="cache of local-LM answers")
    tbuild.set_defaults(run=_tasks_build)

    fine = steps.add_parser("finetune", help="step 2: finetune a causal LM on the SFT data (trl)")
    fine.add_argument("--config", help="a YAML recipe (see recipes/)")
    fine.add_argument("overrides", nargs="*", help="key=value overrides, e.g. epochs=1 backbone.scratch.layers=2")
    fine.set_defaults(run=_finetune)

    rec = steps.add_parser("recommend", help="step 3: top-k items by constrained beam search")
    rec.add_argument("--model", required=True, help="a folder from `genrec finetune`")
    who = rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--history", help="comma-separated original item ids, oldest first")
    who.add_argument("--users", help="a file with one history per line")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--beams", type=int, default=20)
    rec.add_argument("--exact", action="store_true", help="the provably best k items (best-first search)")
    rec.add_argument("--exclude-history", action="store_true", help="never recommend items of the history")
    rec.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    rec.set_defaults(run=_recommend)

    ev = steps.add_parser("evaluate", help="step 4: leave-one-out Recall / NDCG / MRR, full ranking, by group")
    ev.add_argument("--model", required=True, help="a folder from `genrec finetune`, or `popularity`")
    ev.add_argument("--data", required=True, help="the dataset folder the model was trained on")
    ev.add_argument("--split", choices=["valid", "test"], default="test")
    ev.add_argument("--out", help="write metrics.json here")
    ev.add_argument("--beams", type=int, default=20)
    ev.add_argument("--exact", action="store_true", help="exact top-20 instead of beam search")
    ev.add_argument("--max-history", type=int, default=20)
    ev.add_argument("--users", type=int, help="a seeded random sample of this many users (quick checks)")
    ev.add_argument("--exclude-history", action="store_true",
                    help="never recommend an item of the user's history (for data where items never repeat)")
    ev.set_defaults(run=_evaluate)

    base = steps.add_parser("baseline", help="train a baseline recommender on the same split")
    base_cmds = base.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    btrain = base_cmds.add_parser("train", help="train and save a baseline (evaluate it with genrec evaluate)")
    btrain.add_argument("--method", choices=METHODS, required=True,
                        help="-bce: one sampled negative per position (else full-softmax cross-entropy); elephant: "
                             "behaviour-tuned MiniLM init (-plm: plain MiniLM, -random: random, same width); "
                             "knowledge: LM-written knowledge with alignment (-frozen: without)")
    btrain.add_argument("--data", required=True)
    btrain.add_argument("--out", required=True)
    btrain.add_argument("--max-history", type=int, default=20)
    btrain.add_argument("--cache", default=None, help="embeddings and LM text cache (default: OUT/cache)")
    btrain.add_argument("overrides", nargs="*", help="key=value: model settings (hidden=128 epochs=50), "
                                                     "tune.steps=300 (elephant), knowledge.rounds=2 (knowledge)")
    btrain.set_defaults(run=_baseline_train)

    run = steps.add_parser("run", help="a whole YAML recipe: data, codebook, SFT data, finetune, evaluate (cached)")
    run.add_argument("recipe", help="a YAML recipe, e.g. recipes/quickstart.yaml")
    run.add_argument("overrides", nargs="*", help="key=value overrides, e.g. finetune.max_steps=100")
    run.set_defaults(run=_run)

    demo = steps.add_parser("demo", help="the main job on the embedded synthetic dataset, end to end")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--train-steps", type=int, default=1000, help="finetuning steps (fewer: faster, worse)")
    demo.add_argument("--users", type=int, default=3000, help="users in the synthetic dataset")
    demo.add_argument("--sasrec-epochs", type=int, default=40, help="SASRec training epochs at most")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    try:
        return args.run(args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
