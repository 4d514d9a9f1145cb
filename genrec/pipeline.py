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
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from baselines.markov import MarkovRecommender
from baselines.sequential import SequentialConfig, SequentialRecommender
from semid.codebook import CodebookConfig, build_codebook, save_codebook
from semid.tokenizer import SemanticIdTokenizer
from tasks import TaskConfig, build_sft, save_sft

from .atomic import atomic_folder, folder_lock, foreign, mark
from .card import write_model_card
from .config import build
from .data import DataConfig, DataError, RecDataset, leave_one_out, load_dataset
from .evaluate import TABLE_KEYS, EvalOptions, PopularityRecommender, evaluate, metrics_table, plot_groups
from .finetune import FinetuneConfig, finetune, resumable_checkpoint
from .fusion import fuse
from .memory import peak_rss_mb, reset_peak
from .model import GenRecModel

log = logging.getLogger("genrec.pipeline")
STAGES = ("data", "sasrec", "semid", "sft", "model", "results")
OWN_SASREC = "sasrec"  # codebook.collaborative value: the item table of the run's own SASRec stage
BASELINES = ("popularity", "markov", "sasrec")


@dataclass
class RunConfig:
    name: str = "run"              # the run's folder under runs/ (a plain name)
    run_dir: str | None = None     # an explicit run folder instead of runs/<name>
    data: DataConfig = field(default_factory=DataConfig)
    codebook: CodebookConfig = field(default_factory=CodebookConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # its folders are the run's
    evaluate: EvalOptions = field(default_factory=EvalOptions)
    baselines: tuple[Literal[BASELINES], ...] = BASELINES  # rows beside genrec in the results
    sasrec: SequentialConfig = field(default_factory=SequentialConfig)  # the run's SASRec (baseline, collaborative)
    # `sasrec`: a row "genrec + sasrec" blending both models' per-user normalised scores, its weight chosen on
    # the validation split (needs finetune.head: parallel, which scores every item)
    fusion: Literal["none", "sasrec"] = "none"

    def __post_init__(self):
        """Every section is typed and checked when the recipe is read, before any work starts."""
        for section, cls in (("data", DataConfig), ("codebook", CodebookConfig), ("tasks", TaskConfig),
                             ("finetune", FinetuneConfig), ("evaluate", EvalOptions), ("sasrec", SequentialConfig)):
            setattr(self, section, build(cls, getattr(self, section), section))
        self.baselines = tuple(self.baselines)
        folders = [name for name in ("data", "semid", "sft", "out") if getattr(self.finetune, name)]
        if folders:
            raise DataError(f"finetune.{folders[0]}: a run sets the finetune folders itself; remove it from the recipe")
        if not self.name or Path(self.name).name != self.name or self.name in (".", ".."):
            raise DataError(f"name: {self.name!r} must be a plain folder name (use run_dir for a path)")
        if self.fusion == "sasrec" and self.finetune.head != "parallel":
            raise DataError("fusion: sasrec blends scores of every item, which only finetune.head: parallel gives")

    def needs_sasrec(self) -> bool:
        return "sasrec" in self.baselines or self.codebook.collaborative == OWN_SASREC or self.fusion == "sasrec"

    def folder(self) -> Path:
        return Path(self.run_dir or f"runs/{self.name}")


def training_line(timings: dict[str, dict]) -> str:
    """'training: genrec 23.4 min, peak 1,850 MB; sasrec ...' for the run's report."""
    parts = []
    for name, cost in timings.items():
        minutes = f"{cost['train_seconds'] / 60:.1f} min" if cost.get("train_seconds") is not None else "time unknown"
        peak = f", peak {cost['peak_rss_mb']:,} MB" if cost.get("peak_rss_mb") is not None else ""
        parts.append(f"{name} {minutes}{peak}")
    return "training (wall time, peak resident memory): " + "; ".join(parts)


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _content_digest(path: str) -> str | None:
    """What a file (or a saved model folder's weights) holds, so replacing it reruns the stages that read it."""
    path = Path(path)
    target = path / "model.pt" if path.is_dir() else path
    return hashlib.sha256(target.read_bytes()).hexdigest()[:16] if target.is_file() else None


class Run:
    def __init__(self, cfg: RunConfig):
        self.cfg, self.root = cfg, cfg.folder()
        self.hashes: dict[str, str] = {}
        self.stage_started = time.perf_counter()

    def _start_stage(self) -> None:
        self.stage_started = time.perf_counter()
        reset_peak()

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

    def _stage_cost(self, stage: str) -> dict:
        """The stage's wall time and peak memory, as recorded when it ran (possibly in an earlier process)."""
        record = json.loads((self.root / stage / "stage.json").read_text())
        return {"train_seconds": record.get("seconds"), "peak_rss_mb": record.get("peak_rss_mb")}

    def _record(self, folder: Path, key: str) -> None:
        """Mark a stage done, with its wall time and peak memory (the stage's own on Linux; what bench/quality
        reports)."""
        (folder / "stage.json").write_text(json.dumps({
            "key": key, "seconds": round(time.perf_counter() - self.stage_started, 1), "peak_rss_mb": peak_rss_mb()}))

    def stage_data(self) -> None:
        key = _digest(asdict(self.cfg.data))
        if self._cached("data", key, "dataset.json"):
            return
        load_dataset(self.cfg.data).save(self.root / "data")
        self._record(self.root / "data", key)

    def stage_sasrec(self) -> None:
        """Train the run's SASRec (full-softmax cross-entropy, early stopping on validation NDCG@10)."""
        if not self.cfg.needs_sasrec():
            self.hashes["sasrec"] = None
            log.info("sasrec: not needed (not a baseline, not the collaborative source)")
            return
        cfg = self.cfg.sasrec
        max_history = self.cfg.tasks.max_history
        # the interactions and the catalogue size only: new item text or codes keep the trained SASRec
        data = self.root / "data"
        key = _digest(asdict(cfg), max_history, _content_digest(str(data / "interactions.parquet")),
                      json.loads((data / "dataset.json").read_text())["items"])
        if self._cached("sasrec", key, "model.pt"):
            return
        dataset = RecDataset.load(self.root / "data")
        model = SequentialRecommender(dataset.num_items, cfg)
        model.fit(leave_one_out(dataset, max_history))
        with atomic_folder(self.root / "sasrec") as tmp:
            model.save_pretrained(tmp)
            self._record(tmp, key)

    def stage_semid(self) -> None:
        cfg = self.cfg.codebook
        if cfg.collaborative == OWN_SASREC:
            cfg = replace(cfg, collaborative=str(self.root / "sasrec"))
        key = _digest(asdict(cfg), self.hashes["data"],
                      _content_digest(cfg.collaborative) if cfg.collaborative else None)
        if self._cached("semid", key, "codes.json"):
            return
        dataset = RecDataset.load(self.root / "data")
        tokenizer, stats = build_codebook(dataset, cfg, cache_dir=self.root / "embeddings")
        save_codebook(tokenizer, stats, self.root / "semid")
        self._record(self.root / "semid", key)

    def stage_sft(self) -> None:
        cfg = self.cfg.tasks
        key = _digest(asdict(cfg), self.hashes["semid"])
        if self._cached("sft", key, "tasks.json"):
            return
        semid = SemanticIdTokenizer.from_pretrained(self.root / "semid")
        save_sft(build_sft(RecDataset.load(self.root / "data"), semid, cfg), self.root / "sft", cfg, semid)
        self._record(self.root / "sft", key)

    def stage_model(self) -> None:
        settings = self.cfg.finetune
        key = _digest(asdict(settings), self.hashes["sft"])
        folder = self.root / "model"
        if self._cached("model", key, "genrec.json"):
            return
        started = folder / "stage_started.json"  # the stage key its checkpoints belong to (upstream hashes included)
        cfg = replace(settings, data=str(self.root / "data"), semid=str(self.root / "semid"),
                      sft=str(self.root / "sft"), out=str(folder), overwrite=True)
        resume = (started.is_file() and json.loads(started.read_text()).get("key") == key
                  and resumable_checkpoint(cfg) is not None)
        if resume:
            log.info("model: resuming an interrupted finetune from its checkpoints")
        mark(folder)
        started.write_text(json.dumps({"key": key}))
        finetune(replace(cfg, resume=resume))
        self._record(folder, key)

    def stage_results(self) -> dict:
        options = asdict(self.cfg.evaluate)
        key = _digest(options, self.cfg.baselines, self.cfg.fusion, self.hashes["model"], self.hashes["sasrec"])
        folder = self.root / "results"
        if self._cached("results", key, "metrics.json"):
            return json.loads((folder / "metrics.json").read_text())
        dataset = RecDataset.load(self.root / "data")
        splits = leave_one_out(dataset, self.cfg.tasks.max_history)
        model = GenRecModel.from_pretrained(self.root / "model")
        model.decode_options = {"beams": options["beams"], "exact": options["exact"]}
        models = {"genrec": model}
        if "popularity" in self.cfg.baselines:
            models["popularity"] = PopularityRecommender(splits.train, dataset.num_items)
        if "markov" in self.cfg.baselines:
            models["markov chain"] = MarkovRecommender(splits.train, dataset.num_items)
        timings = {"genrec": self._stage_cost("model")}
        sasrec = SequentialRecommender.from_pretrained(self.root / "sasrec") if self.cfg.needs_sasrec() else None
        if "sasrec" in self.cfg.baselines:
            models["sasrec"] = sasrec
            timings["sasrec"] = self._stage_cost("sasrec")
        fusion = {}
        if self.cfg.fusion == "sasrec":
            log.info("fusion: choosing the weight of genrec + sasrec on %d validation users", len(splits.valid))
            models["genrec + sasrec"], fusion = fuse(model, sasrec, splits, options["exclude_history"])
        results = {name: evaluate(m, dataset, options["split"], splits=splits, users=options["users"],
                                  exclude_history=options["exclude_history"]) for name, m in models.items()}
        if fusion:
            results["genrec + sasrec"].update(fusion)
        table = metrics_table(results, TABLE_KEYS)
        write_model_card(self.root / "model", results)  # the card shows the run's numbers
        with atomic_folder(folder) as tmp:
            (tmp / "metrics.json").write_text(json.dumps(results, indent=2))  # metrics only: runs compare byte for byte
            (tmp / "timings.json").write_text(json.dumps(timings, indent=2))
            sample = f", a random sample of {options['users']} users" if options["users"] else ""
            sample += ", seen items excluded" if options["exclude_history"] else ""
            (tmp / "metrics.md").write_text(f"{self.cfg.name}, {options['split']} split{sample}\n\n{table}\n\n"
                                            f"{training_line(timings)}\n")
            plot_groups(results, tmp / "metrics.png", title=f"{self.cfg.name}, {options['split']} split{sample}")
            self._record(tmp, key)
        return results

    def run(self) -> dict:
        """Every stage in order, with the run folder locked; a folder genrec did not make is refused."""
        if foreign(self.root):
            raise DataError(f"run folder {self.root}: exists and genrec did not make it; choose another name or "
                            "run_dir")
        mark(self.root)
        with folder_lock(self.root):
            (self.root / "recipe.json").write_text(json.dumps(asdict(self.cfg), indent=2))
            for stage in STAGES[:-1]:
                log.info("== %s ==", stage)
                self._start_stage()
                getattr(self, f"stage_{stage}")()
            log.info("== results ==")
            self._start_stage()
            return self.stage_results()
