"""The CLI's commands: each is a typed config dataclass plus a function taking it (the CLI's flags, `--config`
and `key=value` are all generated from the dataclass). A command's module is imported only when it runs, so
`genrec --help` stays fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]         # e.g. ("codebook", "build")
    help: str
    module: str                    # genrec.commands.<module>
    config: str                    # the config dataclass in it
    function: str                  # the function that runs it
    required: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    recipe: bool = False           # the first positional argument is the YAML config (genrec run RECIPE)
    default_recipe: str | None = None  # the module attribute naming the config file used when none is given


COMMANDS = (
    Command(("data", "prepare"), "read a public format, filter, save a dataset folder", "data", "PrepareConfig",
            "prepare", required=("out",)),
    Command(("data", "stats"), "statistics of a prepared dataset folder", "data", "StatsConfig", "stats",
            required=("dir",), positional=("dir",)),
    Command(("data", "synthetic"), "write the embedded synthetic default dataset", "data", "SyntheticCommand",
            "synthetic", required=("out",)),
    Command(("data", "download"), "fetch a public dataset (needs internet)", "data", "DownloadConfig", "download",
            required=("source", "name", "out")),
    Command(("codebook", "build"), "step 1: embed item text, train a quantizer, write unique semantic IDs",
            "codebook", "CodebookBuildConfig", "build", required=("data", "out")),
    Command(("tasks", "build"), "multi-task SFT data (train / valid / test) from a dataset and its semantic IDs",
            "tasks", "TasksBuildConfig", "build", required=("data", "semid", "out")),
    Command(("finetune",), "step 2: finetune a causal LM on the SFT data (trl)", "finetune", "FinetuneConfig",
            "run", required=("data", "semid", "sft", "out")),
    Command(("recommend",), "step 3: top-k items for histories", "recommend", "RecommendConfig", "recommend",
            required=("model",)),
    Command(("evaluate",), "step 4: leave-one-out Recall / NDCG / MRR, full ranking, by group", "evaluate",
            "EvaluateConfig", "evaluate_command", required=("model", "data")),
    Command(("baseline", "train"), "train and save a baseline recommender on the same split", "baseline",
            "BaselineTrainConfig", "train_command", required=("method", "data", "out")),
    Command(("baseline", "ctr"), "a CTR method (DeepFM, DCNv2, FLIP, ClickPrompt) on MovieLens: AUC and log loss",
            "ctr", "CtrCommandConfig", "ctr_command", required=("method", "data", "out")),
    Command(("baseline", "recexplainer"), "RecExplainer: align an LLM with a saved recommender, measure how well "
            "it imitates it", "explain", "RecExplainerCommandConfig", "recexplainer_command",
            required=("data", "target", "out")),
    Command(("explain",), "a saved RecExplainer's account of one recommendation: the recommender's decision, "
            "the surrogate's yes / no and explanation", "explain", "ExplainConfig", "explain",
            required=("model", "history", "item")),
    Command(("serve",), "an HTTP API over a saved model, with dynamic batching", "serve", "ServeConfig", "serve",
            required=("model",)),
    Command(("push",), "upload a saved model folder to the Hugging Face Hub", "share", "PushConfig", "push",
            required=("model", "repo")),
    Command(("export",), "a plain transformers model folder (LoRA merged) plus catalogue.json", "share",
            "ExportConfig", "export", required=("model", "out")),
    Command(("run",), "a whole YAML recipe: data, codebook, SFT data, finetune, evaluate (cached, resumable)", "run",
            "RunConfig", "run", recipe=True),
    Command(("demo",), "the quickstart recipe through `genrec run`, with a report of what it built", "run",
            "RunConfig", "demo", default_recipe="QUICKSTART"),
)
