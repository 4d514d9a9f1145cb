"""`genrec run RECIPE`: data -> codebook -> SFT data -> finetune -> evaluate, each stage cached in the run folder.

The run's SASRec is a stage of its own (`sasrec/`, trained on the training split) when a recipe asks for it,
as a baseline or as the source of collaborative codes (`codebook.collaborative: sasrec`, LETTER's
regularisation): one trained model serves both, and changing only the evaluation does not retrain it.

A stage is skipped when its output is complete and was made from the same settings and the same upstream
outputs (each stage records a hash of both in `stage.json`); changing a setting reruns that stage and every
stage after it. The hash covers the settings with their defaults filled in, so a changed default reruns too.
Outputs are written atomically, and an interrupted finetune resumes from its checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .data import DataError, RecDataset, SyntheticConfig, leave_one_out, load_format, make_synthetic, preprocess
from .data.io import atomic_folder
from .evaluate import TABLE_KEYS, PopularityRecommender, evaluate, metrics_table, plot_groups

log = logging.getLogger("genrec.pipeline")
STAGES = ("data", "sasrec", "semid", "sft", "model", "results")
OWN_SASREC = "sasrec"  # codebook.collaborative value: the item table of the run's own SASRec stage
EVALUATE_KEYS = ("split", "beams", "exact", "users", "exclude_history")


@dataclass
class DataStage:
    format: str = "synthetic"          # synthetic, or a `genrec data prepare` format
    path: str | None = None
    item_text: str | None = None
    kcore: int = 0
    dedup: bool = False
    synthetic: dict = field(default_factory=dict)  # SyntheticConfig fields


@dataclass
class RunConfig:
    name: str = "run"
    run_dir: str | None = None         # default: runs/<name>
    data: dict = field(default_factory=dict)
    codebook: dict = field(default_factory=dict)   # CodebookConfig fields, or {reference_codes: true}
    tasks: dict = field(default_factory=dict)      # TaskConfig fields
    finetune: dict = field(default_factory=dict)   # FinetuneConfig fields except the folders
    evaluate: dict = field(default_factory=dict)   # split, beams, exact, users (a seeded sample), exclude_history
    baselines: list[str] = field(default_factory=lambda: ["popularity", "markov", "sasrec"])
    sasrec: dict = field(default_factory=dict)     # SequentialConfig fields of the run's SASRec

    def needs_sasrec(self) -> bool:
        return "sasrec" in self.baselines or self.codebook.get("collaborative") == OWN_SASREC

    def folder(self) -> Path:
        return Path(self.run_dir or f"runs/{self.name}")

    def validate(self) -> None:
        """Build every section's config now, so a typo fails before hours of work, naming the section."""
        from baselines.sequential import SequentialConfig
        from semid.codebook import CodebookConfig
        from tasks import TaskConfig

        from .config import build
        from .finetune import FinetuneConfig

        build(DataStage, self.data, "data")
        if not self.codebook.get("reference_codes"):
            build(CodebookConfig, _codebook_fields(self.codebook), "codebook")
        build(TaskConfig, _tuples(self.tasks), "tasks")
        build(FinetuneConfig, self.finetune, "finetune")
        build(SequentialConfig, self.sasrec, "sasrec")
        unknown = set(self.evaluate) - set(EVALUATE_KEYS)
        if unknown:
            raise DataError(f"evaluate: unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(EVALUATE_KEYS)})")
        unknown = set(self.baselines) - {"popularity", "markov", "sasrec"}
        if unknown:
            raise DataError(f"baselines: unknown {', '.join(sorted(unknown))} (available: popularity, markov, sasrec)")


def _tuples(section: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in section.items()}


def _codebook_fields(section: dict) -> dict:
    from semid.rqvae import RQVAETrainConfig

    fields = _tuples({k: v for k, v in section.items() if k != "train"})
    if "train" in section:
        fields["train"] = RQVAETrainConfig(**section["train"])
    return fields


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _content_digest(path: str) -> str | None:
    """What a file (or a saved model folder's weights) holds, so replacing it reruns the stages that read it."""
    path = Path(path)
    target = path / "model.pt" if path.is_dir() else path
    return hashlib.sha256(target.read_bytes()).hexdigest()[:16] if target.is_file() else None


class Run:
    def __init__(self, cfg: RunConfig):
        cfg.validate()
        self.cfg, self.root = cfg, cfg.folder()
        self.hashes: dict[str, str] = {}
        self.stage_started = time.perf_counter()

    def _cached(self, stage: str, key: str, required: str) -> bool:
        """Remember the stage's key (the next stages hash it); True when its output was made with that key."""
        self.hashes[stage] = key
        record = self.root / stage / "stage.json"
        if not (record.is_file() and (self.root / stage / required).exists()):
            return False
        if json.loads(record.read_text()).get("key") != key:
            return False
        log.info("%s: cached", stage)
        return True

    def _max_history(self) -> int:
        """The history length the split truncates to: the tasks' setting, with TaskConfig's default filled in."""
        from tasks import TaskConfig

        return TaskConfig(**_tuples(self.cfg.tasks)).max_history

    def _stage_seconds(self, stage: str) -> float | None:
        return json.loads((self.root / stage / "stage.json").read_text()).get("seconds")

    def _record(self, folder: Path, key: str) -> None:
        """Mark a stage done, with its wall time and the process's peak memory so far (what bench/quality reports)."""
        (folder / "stage.json").write_text(json.dumps({
            "key": key, "seconds": round(time.perf_counter() - self.stage_started, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))

    def stage_data(self) -> None:
        section = DataStage(**self.cfg.data)
        key = _digest(asdict(section))
        if self._cached("data", key, "dataset.json"):
            return
        if section.format == "synthetic":
            dataset = make_synthetic(SyntheticConfig(**section.synthetic))
        else:
            if not section.path:
                raise DataError("data: `path` is required for a real format")
            dataset = load_format(section.format, section.path, section.item_text)
        dataset = preprocess(dataset, kcore_k=section.kcore, dedup=section.dedup)
        dataset.save(self.root / "data")
        self._record(self.root / "data", key)

    def stage_sasrec(self) -> None:
        """Train the run's SASRec (full-softmax cross-entropy, early stopping on validation NDCG@10)."""
        from baselines.sequential import SequentialConfig, SequentialRecommender

        if not self.cfg.needs_sasrec():
            self.hashes["sasrec"] = None
            log.info("sasrec: not needed (not a baseline, not the collaborative source)")
            return
        cfg = SequentialConfig(**self.cfg.sasrec)
        max_history = self._max_history()
        key = _digest(asdict(cfg), max_history, self.hashes["data"])
        if self._cached("sasrec", key, "model.pt"):
            return
        dataset = RecDataset.load(self.root / "data")
        model = SequentialRecommender(dataset.num_items, cfg)
        model.fit(leave_one_out(dataset, max_history))
        with atomic_folder(self.root / "sasrec") as tmp:
            model.save_pretrained(tmp)
            self._record(tmp, key)

    def stage_semid(self) -> None:
        from semid.codebook import CodebookConfig, build_codebook, plot_usage

        section = self.cfg.codebook
        cfg = None if section.get("reference_codes") else CodebookConfig(**_codebook_fields(section))
        if cfg and cfg.collaborative == OWN_SASREC:
            cfg = replace(cfg, collaborative=str(self.root / "sasrec"))
        key = _digest(asdict(cfg) if cfg else section, self.hashes["data"],
                      _content_digest(cfg.collaborative) if cfg and cfg.collaborative else None)
        if self._cached("semid", key, "codes.json"):
            return
        dataset = RecDataset.load(self.root / "data")
        if cfg is None:
            tokenizer, stats = reference_tokenizer(dataset)
        else:
            tokenizer, stats = build_codebook(dataset, cfg, cache_dir=self.root / "embeddings")
        with atomic_folder(self.root / "semid") as tmp:
            tokenizer.save_pretrained(tmp)
            (tmp / "stats.json").write_text(json.dumps(stats, indent=2, default=str))
            plot_usage(tokenizer.codes, tokenizer.level_sizes, tmp / "code_usage.png")
            self._record(tmp, key)

    def stage_sft(self) -> None:
        from semid.tokenizer import SemanticIdTokenizer
        from tasks import TaskConfig, build_sft, save_sft

        cfg = TaskConfig(**_tuples(self.cfg.tasks))
        key = _digest(asdict(cfg), self.hashes["semid"])
        if self._cached("sft", key, "tasks.json"):
            return
        semid = SemanticIdTokenizer.from_pretrained(self.root / "semid")
        save_sft(build_sft(RecDataset.load(self.root / "data"), semid, cfg), self.root / "sft", cfg, semid)
        self._record(self.root / "sft", key)

    def stage_model(self) -> None:
        from .finetune import FinetuneConfig, finetune

        settings = FinetuneConfig(**self.cfg.finetune)
        key = _digest(asdict(settings), self.hashes["sft"])
        folder = self.root / "model"
        if self._cached("model", key, "genrec.json"):
            return
        started = folder / "started.json"
        resume = (started.is_file() and json.loads(started.read_text()).get("key") == key
                  and any((folder / "checkpoints").glob("checkpoint-*")))
        folder.mkdir(parents=True, exist_ok=True)
        started.write_text(json.dumps({"key": key}))
        cfg = replace(settings, data=str(self.root / "data"), semid=str(self.root / "semid"),
                      sft=str(self.root / "sft"), out=str(folder), resume=resume)
        if resume:
            log.info("model: resuming an interrupted finetune from its checkpoints")
        finetune(cfg)
        self._record(folder, key)

    def stage_results(self) -> dict:
        from baselines.markov import MarkovRecommender
        from baselines.sequential import SequentialRecommender

        from .model import GenRecModel

        options = {"split": "test", "beams": 20, "exact": False, "exclude_history": False, **self.cfg.evaluate}
        key = _digest(options, self.cfg.baselines, self.hashes["model"], self.hashes["sasrec"])
        folder = self.root / "results"
        if self._cached("results", key, "metrics.json"):
            return json.loads((folder / "metrics.json").read_text())
        dataset = RecDataset.load(self.root / "data")
        splits = leave_one_out(dataset, self._max_history())
        model = GenRecModel.from_pretrained(self.root / "model")
        model.decode_options = {"beams": options["beams"], "exact": options["exact"]}
        models = {"genrec": model}
        if "popularity" in self.cfg.baselines:
            models["popularity"] = PopularityRecommender(splits.train, dataset.num_items)
        if "markov" in self.cfg.baselines:
            models["markov chain"] = MarkovRecommender(splits.train, dataset.num_items)
        train_seconds = {"genrec": self._stage_seconds("model")}
        if "sasrec" in self.cfg.baselines:
            models["sasrec"] = SequentialRecommender.from_pretrained(self.root / "sasrec")
            train_seconds["sasrec"] = self._stage_seconds("sasrec")
        results = {name: evaluate(m, dataset, options["split"], splits=splits, users=options.get("users"),
                                  exclude_history=options["exclude_history"]) for name, m in models.items()}
        for name, seconds in train_seconds.items():
            results[name]["train_seconds"] = seconds
        table = metrics_table(results, TABLE_KEYS)
        with atomic_folder(folder) as tmp:
            (tmp / "metrics.json").write_text(json.dumps(results, indent=2))
            sample = f", a random sample of {options['users']} users" if options.get("users") else ""
            sample += ", seen items excluded" if options["exclude_history"] else ""
            (tmp / "metrics.md").write_text(f"{self.cfg.name}, {options['split']} split{sample}\n\n{table}\n")
            plot_groups(results, tmp / "metrics.png", title=f"{self.cfg.name}, {options['split']} split{sample}")
            self._record(tmp, key)
        return results

    def run(self) -> dict:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "recipe.json").write_text(json.dumps(asdict(self.cfg), indent=2))
        for stage in STAGES[:-1]:
            log.info("== %s ==", stage)
            self.stage_started = time.perf_counter()
            getattr(self, f"stage_{stage}")()
        log.info("== results ==")
        self.stage_started = time.perf_counter()
        return self.stage_results()


def reference_tokenizer(dataset: RecDataset):
    """Semantic IDs from a dataset's released codes (`reference_codes`, e.g. LC-Rec's index.json), with the
    collisions they contain resolved by our uniqueness step (moved to free last-level codes)."""
    from semid.collisions import collision_rate, make_unique
    from semid.tokenizer import SemanticIdTokenizer

    if "reference_codes" not in dataset.items or not all(len(c) for c in dataset.items["reference_codes"]):
        raise DataError(f"{dataset.name}: not every item has reference codes (LC-Rec's X.index.json)")
    rows = [[int(token.split("_")[1].rstrip(">")) for token in codes] for codes in dataset.items["reference_codes"]]
    codes = np.asarray(rows, dtype=np.int64)
    sizes = [int(v) + 1 for v in codes.max(axis=0)]
    keep_own = np.ones((len(codes), sizes[-1]))  # cost 0 for an item's own last code: move as few as possible
    keep_own[np.arange(len(codes)), codes[:, -1]] = 0.0
    unique = make_unique(codes, keep_own)
    sizes += [int(unique[:, -1].max()) + 1] if unique.shape[1] > codes.shape[1] else []
    tokenizer = SemanticIdTokenizer(unique, list(dataset.items["item_id"]), sizes, None, {"source": "reference"})
    stats = {"items": len(codes), "collision_rate_before": collision_rate(codes), "collision_rate": 0.0,
             "items_moved": int((unique[:, : codes.shape[1]] != codes).any(axis=1).sum()), "level_sizes": sizes}
    return tokenizer, stats
