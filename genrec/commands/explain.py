"""`genrec baseline recexplainer`: align a surrogate LLM with a saved recommender and measure the alignment;
`genrec explain`: the recommender's decision on one item, the surrogate's yes / no and its explanation."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from baselines.methods import load as load_recommender
from baselines.recexplainer.align import RecExplainerConfig, align
from baselines.recexplainer.infer import generate_text, says_yes
from baselines.recexplainer.model import Explainer
from tasks.explainer import AlignTaskConfig, Renderer, explain_prompts, top_count

from ..atomic import atomic_file, check_output, mark
from ..data import MAX_HISTORY, DataError, RecDataset, leave_one_out
from ..finetune import plot_curves
from ..memory import peak_rss_mb


@dataclass
class RecExplainerCommandConfig(RecExplainerConfig):
    data: str = ""                 # a dataset folder from `genrec data prepare`
    target: str = ""               # the recommender to imitate: a folder from `genrec baseline train`
    out: str = ""                  # where the surrogate, results.json and train_curves.png go
    max_history: int = MAX_HISTORY  # history items the recommender sees
    overwrite: bool = False        # replace OUT if an earlier genrec command wrote it


def recexplainer_command(cfg: RecExplainerCommandConfig) -> int:
    out = mark(check_output(cfg.out, inputs=(cfg.data, cfg.target), overwrite=cfg.overwrite))
    dataset = RecDataset.load(cfg.data)
    recommender = load_recommender(cfg.target)
    started = time.perf_counter()
    explainer, summary = align(dataset, leave_one_out(dataset, cfg.max_history), recommender, cfg, out)
    summary.update({"target": cfg.target, "target_method": recommender.method, "data": cfg.data,
                    "seconds": round(time.perf_counter() - started, 1),
                    "peak_rss_mb": peak_rss_mb()})
    explainer.save_pretrained(out)
    with atomic_file(out / "results.json") as f:
        f.write(json.dumps(summary, indent=2))
    plot_curves(out / "train_log.jsonl", out / "train_curves.png")
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in summary["alignment"].items() if not k.endswith("_rows"))
    print(f"recexplainer-{cfg.variant} imitating {recommender.method}: {metrics} on {cfg.eval_users} held-out users; "
          f"trained {summary['steps']} steps in {summary['train_seconds']:.0f} s; saved to {out} (explain with: "
          f"genrec explain --model {out} --history ITEM,ITEM,... --item ITEM)")
    return 0


@dataclass
class ExplainConfig:
    model: str = ""                # a folder from `genrec baseline recexplainer`
    history: list[str] = field(default_factory=list)  # the user's items, oldest first (the dataset's item ids)
    item: str = ""                 # the item to explain
    max_new_tokens: int = 160


def explain(cfg: ExplainConfig) -> int:
    explainer = Explainer.from_pretrained(cfg.model)
    index = {item_id: i for i, item_id in enumerate(explainer.item_ids)}
    unknown = [i for i in [*cfg.history, cfg.item] if i not in index]
    if unknown or not cfg.history:
        raise DataError(f"{'unknown item ids ' + ', '.join(map(repr, unknown)) if unknown else 'an empty --history'}"
                        f"; give the dataset's item ids that {cfg.model} was trained on")
    history, item = np.array([index[i] for i in cfg.history]), index[cfg.item]
    scores = explainer.recommender.score_items([history])[0].astype(np.float64)
    scores[history] = -np.inf
    rank = int((scores > scores[item]).sum()) + 1
    candidates = len(scores) - len(np.unique(history))
    tasks = explainer.info.get("tasks", {})
    share = tasks.get("positive_share", AlignTaskConfig.positive_share)
    recommended = rank <= top_count(candidates, share)
    render = Renderer(explainer.titles, explainer.variant, tasks.get("shown_history", AlignTaskConfig.shown_history))
    (question, items), (why, why_items) = explain_prompts(render, history, item, recommended)
    yes, p_yes = says_yes(explainer, explainer.prompt_embeds(question, history, items))
    text = generate_text(explainer, explainer.prompt_embeds(why, history, why_items), cfg.max_new_tokens,
                         min_new_tokens=10)  # alignment answers are short; an explanation is a sentence or more
    title = explainer.titles[item]
    print(f'recommender ({explainer.recommender.method}): "{title}" ranks {rank} of {candidates} new items: '
          f"{'recommended' if recommended else 'not recommended'} (top {share:.0%} counts as recommended)")
    print(f"surrogate ({explainer.variant}): {'yes' if yes else 'no'} (P(yes) {p_yes:.2f})")
    print(f"explanation: {text}")
    return 0
