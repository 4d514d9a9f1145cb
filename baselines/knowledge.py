"""LLM knowledge augmentation: an approximation of Ant Group's SIGIR'24 method ("Enhancing Sequential
Recommenders with Augmented Knowledge from Aligned Large Language Models"), which has no public code.

1. Knowledge: a local LM (SmolLM2-135M-Instruct offline) writes a short text per item from its metadata
   (cached on disk); a text encoder (MiniLM) embeds it.
2. Fusion: inside SASRec each item's vector is its ID embedding plus a learned projection of its knowledge
   vector, for the input sequence and the output scores alike.
3. Alignment, repeated `rounds` times: a recommender with the current knowledge is trained on the training
   sequences without each user's last training item, which becomes a probe. For a sample of probe items the
   LM samples several new texts; a text is kept when swapping it in lowers the recommender's loss on that item's
   probe users, and the LM is finetuned (LoRA, trl) on the kept texts. Then every item's knowledge is rewritten
   by the updated LM. Validation and test items are never used for alignment.

The final recommender is trained on the full training part with the last round's knowledge. Compare with
`sasrec` (no knowledge) and `rounds=0` (knowledge from the frozen LM).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from genrec.data import DataError, EvalSet, Split

from .sequential import SASRecModel, SequentialConfig, SequentialRecommender

log = logging.getLogger("genrec.baselines")
PROMPT = ("Product: {text}\nIn one or two sentences, say who buys this product, what for, and which other "
          "products go with it.")


@dataclass
class KnowledgeConfig:
    lm: str = "smollm2"
    encoder: str = "minilm"
    rounds: int = 1              # alignment rounds; 0 keeps the frozen LM's knowledge
    align_items: int = 64        # probe items whose knowledge is resampled in a round
    candidates: int = 4          # texts sampled per probe item
    temperature: float = 0.9
    max_new_tokens: int = 40
    lora_rank: int = 8
    lora_epochs: int = 2
    lora_lr: float = 5e-4
    batch_size: int = 16         # generation batch
    item_chars: int = 400        # item text in the prompt is cut to this
    seed: int = 0


class KnowledgeSASRecModel(SASRecModel):
    """SASRec whose item vectors are ID embedding + projection of a frozen knowledge vector."""

    def __init__(self, num_items: int, cfg: SequentialConfig, knowledge: np.ndarray):
        super().__init__(num_items, cfg)
        if knowledge.shape[0] != num_items:
            raise DataError(f"knowledge vectors have {knowledge.shape[0]} rows for {num_items} items")
        table = torch.zeros(num_items + 1, knowledge.shape[1])
        table[1:] = torch.as_tensor(knowledge, dtype=torch.float32)
        self.register_buffer("knowledge", table)
        self.project = nn.Linear(knowledge.shape[1], cfg.hidden, bias=False)
        nn.init.normal_(self.project.weight, std=0.02)

    def embed(self, seqs: torch.Tensor) -> torch.Tensor:
        return self.items(seqs) + self.project(self.knowledge[seqs])  # padding: both rows are zero

    def item_table(self) -> torch.Tensor:
        return self.items.weight[1 : self.num_items + 1] + self.project(self.knowledge[1:])


class KnowledgeRecommender(SequentialRecommender):
    def __init__(self, num_items: int, cfg: SequentialConfig | None = None, knowledge: np.ndarray | None = None,
                 method: str | None = None):
        if knowledge is None:
            raise DataError("knowledge augmentation needs a knowledge vector per item")
        self.knowledge = np.asarray(knowledge, dtype=np.float32)
        super().__init__(num_items, cfg, method=method or "knowledge")

    def _build_model(self, num_items: int) -> nn.Module:
        return KnowledgeSASRecModel(num_items, self.cfg, self.knowledge)

    @classmethod
    def _restore(cls, info: dict, state: dict) -> KnowledgeRecommender:
        return cls(info["num_items"], SequentialConfig(**info["config"]), state["knowledge"][1:].numpy(),
                   info.get("method"))

    @torch.no_grad()
    def probe_losses(self, probe: EvalSet, item: int, vectors: np.ndarray) -> np.ndarray:
        """Cross-entropy on the probe users whose history or target holds `item`, with `item`'s knowledge
        replaced by each row of `vectors` in turn."""
        rows = [r for r, (h, t) in enumerate(zip(probe.histories, probe.targets)) if t == item or item in h]
        model = self.model.eval()
        saved = model.knowledge[item + 1].clone()
        targets = torch.as_tensor(probe.targets[rows])
        losses = []
        for vector in vectors:
            model.knowledge[item + 1] = torch.as_tensor(vector)
            scores = model.scores(model.user_vectors([probe.histories[r] for r in rows]))
            losses.append(float(nn.functional.cross_entropy(scores, targets)))
        model.knowledge[item + 1] = saved
        return np.asarray(losses)


def probe_split(split: Split) -> tuple[Split, EvalSet]:
    """The training sequences without each user's last item, and those last items as a probe set."""
    keep = [u for u, s in enumerate(split.train) if len(s) >= 3]
    probe = EvalSet(np.asarray(keep, dtype=np.int64), [split.train[u][:-1] for u in keep],
                    np.asarray([split.train[u][-1] for u in keep], dtype=np.int64))
    inner = Split([s[:-1] if len(s) >= 3 else s for s in split.train], probe, probe, 0)
    return inner, probe


class KnowledgeWriter:
    """The LM that writes item knowledge, and the encoder that embeds it."""

    def __init__(self, item_texts: list[str], cfg: KnowledgeConfig, cache_dir=None):
        from semid.text import SentenceTransformerEncoder
        from tasks.generate import Generator

        self.cfg, self.cache_dir = cfg, cache_dir
        self.prompts = [PROMPT.format(text=t[: cfg.item_chars]) for t in item_texts]
        self.generator = Generator(cfg.lm, cache_dir, cfg.batch_size, cfg.max_new_tokens)
        self.encoder = SentenceTransformerEncoder(cfg.encoder)

    def write(self) -> list[str]:
        """Every item's knowledge by the current LM (greedy, cached)."""
        return [t or "no knowledge" for t in self.generator.generate(self.prompts)]

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def align(self, pairs: list[tuple[int, str]]) -> None:
        """LoRA-finetune the LM on (item, kept knowledge) pairs and merge it. The new model's cache name is the
        old one plus a digest of what it was trained on, so cached text never outlives the model that wrote it."""
        import hashlib
        import tempfile

        import datasets
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer

        from tasks.generate import Generator

        tokenizer, model = self.generator.lm
        rows = datasets.Dataset.from_list([{"prompt": self.generator.render(self.prompts[i]), "completion": text}
                                           for i, text in pairs])
        lora = LoraConfig(r=self.cfg.lora_rank, lora_alpha=2 * self.cfg.lora_rank, target_modules="all-linear",
                          task_type="CAUSAL_LM")
        with tempfile.TemporaryDirectory() as scratch:  # nothing is saved: the merged model lives on in memory
            args = SFTConfig(output_dir=scratch, num_train_epochs=self.cfg.lora_epochs, per_device_train_batch_size=8,
                             learning_rate=self.cfg.lora_lr, bf16=False, report_to=[], save_strategy="no",
                             logging_steps=10, seed=self.cfg.seed, disable_tqdm=True)
            trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                                 peft_config=lora)
            trainer.train()
        merged = trainer.model.merge_and_unload().eval()
        recipe = repr((pairs, self.cfg.lora_rank, self.cfg.lora_epochs, self.cfg.lora_lr, self.cfg.seed))
        name = f"{self.generator.model_name}+aligned-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
        self.generator = Generator(name, self.cache_dir, self.cfg.batch_size, self.cfg.max_new_tokens,
                                   lm=(tokenizer, merged))


def align_knowledge(writer: KnowledgeWriter, split: Split, num_items: int, seq_cfg: SequentialConfig) -> dict:
    """Alignment rounds; returns the final knowledge texts and vectors and what each round kept."""
    rng = np.random.default_rng(writer.cfg.seed)
    texts = writer.write()
    vectors = writer.embed(texts)
    inner, probe = probe_split(split)
    rounds = []
    for round_no in range(writer.cfg.rounds):
        recommender = KnowledgeRecommender(num_items, SequentialConfig(**asdict(seq_cfg)), vectors)
        recommender.fit(inner)
        candidates_items = np.unique(probe.targets)
        chosen = rng.choice(candidates_items, min(writer.cfg.align_items, len(candidates_items)), replace=False)
        samples = writer.generator.sample([writer.prompts[i] for i in chosen], writer.cfg.candidates,
                                          writer.cfg.temperature, seed=writer.cfg.seed + round_no)
        kept, gains = [], []
        for item, options in zip(chosen.tolist(), samples):
            options = [o for o in options if o]
            if not options:
                continue
            losses = recommender.probe_losses(probe, item, writer.embed([texts[item], *options]))
            best = int(np.argmin(losses[1:]))
            if losses[1 + best] < losses[0]:
                kept.append((item, options[best]))
                gains.append(float(losses[0] - losses[1 + best]))
        log.info("alignment round %d: kept %d of %d items' new knowledge", round_no + 1, len(kept), len(chosen))
        if kept:
            writer.align(kept)
            texts = writer.write()
            vectors = writer.embed(texts)
        rounds.append({"round": round_no + 1, "probed_items": len(chosen), "kept": len(kept),
                       "mean_probe_loss_gain": float(np.mean(gains)) if gains else 0.0})
    return {"texts": texts, "vectors": vectors, "rounds": rounds}


def train_knowledge(item_texts: list[str], split: Split, cfg: KnowledgeConfig | None = None,
                    seq_cfg: SequentialConfig | None = None, cache_dir=None) -> KnowledgeRecommender:
    """Knowledge (aligned for cfg.rounds rounds) fused into SASRec, trained on the full training part."""
    cfg, seq_cfg = cfg or KnowledgeConfig(), seq_cfg or SequentialConfig()
    writer = KnowledgeWriter(item_texts, cfg, cache_dir)
    aligned = align_knowledge(writer, split, len(item_texts), seq_cfg)
    model = KnowledgeRecommender(len(item_texts), seq_cfg, aligned["vectors"],
                                 method="knowledge-frozen-lm" if cfg.rounds == 0 else "knowledge-aligned-lm")
    model.fit(split)
    model.extra = {"alignment": aligned["rounds"], "knowledge_examples": aligned["texts"][:5]}
    return model
