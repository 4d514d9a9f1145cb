"""The generative recommender's model: a causal LM with the semantic-ID code tokens in its vocabulary.

Two backbones through one code path:
- pretrained: a hub name, a local folder, or a GGUF file (SmolLM2-135M-Instruct offline); code tokens are
  added to its tokenizer and its embeddings resized; LoRA (peft) with the new token rows trainable in the
  input embedding and, when it is not tied, the output head (peft `trainable_token_indices`), or full
  finetuning;
- from scratch: a small LLaMA or Qwen2 configuration built in code over a word-level vocabulary of the
  prompts plus the code tokens; fast enough to train on a laptop CPU.

`GenRecModel` keeps model, tokenizer and semantic IDs together: one folder, `save_pretrained` /
`from_pretrained`, and `recommend` for top-k items. Two heads, a setting of the model saved in genrec.json:
- `autoregressive` (LC-Rec): prompts of code tokens, the next item's codes generated one token at a time by
  constrained beam search over the code trie;
- `parallel` (RPG): each history item one input position, every code of the next item predicted at once by
  `genrec.parallel`, the whole catalogue scored exactly.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from semid.tokenizer import SemanticIdTokenizer
from tasks import templates

from .atomic import mark
from .card import write_model_card
from .data import MAX_HISTORY
from .decode import CodeTrie, beam_search, exact_topk
from .errors import DataError, describe
from .parallel import DENSE_CELLS, ParallelHead, ParallelNet, dense_topk, item_scores, trie_beam_search
from .sources import load_pretrained

log = logging.getLogger("genrec.model")

SPECIAL = {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>"}
CONFIG_FILE = "genrec.json"
HEAD_FILE = "parallel_head.safetensors"
Head = Literal["autoregressive", "parallel"]
HEADS = get_args(Head)


@dataclass
class ScratchConfig:
    """A small decoder-only LM built in code (no download)."""

    arch: str = "llama"            # or "qwen2"
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    kv_heads: int = 4
    intermediate: int = 768
    max_positions: int = 512
    tie_embeddings: bool = True
    dropout: float = 0.0           # embedding and residual dropout while training

    def __post_init__(self):
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"backbone.scratch.dropout must be in [0, 1), not {self.dropout}")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"


@dataclass
class BackboneConfig:
    """Either `name` (hub name, local folder, GGUF file, or an alias: smollm2) or `scratch`."""

    name: str | None = None
    scratch: ScratchConfig | None = None
    lora: LoraSettings | None = None   # None: full finetuning
    chat: bool = False                 # render prompts with the tokenizer's chat template

    def __post_init__(self):
        if isinstance(self.scratch, dict):
            self.scratch = ScratchConfig(**self.scratch)
        if isinstance(self.lora, dict):
            self.lora = LoraSettings(**self.lora)
        if (self.name is None) == (self.scratch is None):
            raise ValueError("a backbone needs exactly one of `name` (pretrained) or `scratch`")


# ---- tokenizers and backbones -----------------------------------------------------------------------------

_WORDS = re.compile(r"<[a-z]+_\d+>|\w+|[^\w\s]")


def build_word_tokenizer(texts: list[str], tokens: list[str], min_count: int = 1):
    """A word-level tokenizer over `texts` (words and punctuation) plus `tokens` (the code tokens, or any special
    tokens a model adds), for scratch models."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    counts: dict[str, int] = {}
    added = set(tokens)
    for text in texts:
        for word in _WORDS.findall(text.lower()):
            if word not in added:
                counts[word] = counts.get(word, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= min_count)
    vocab = {token: i for i, token in enumerate([*SPECIAL.values(), *words])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL["unk_token"]))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Sequence(  # spaces split words and are dropped, not kept as <unk> pieces
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")])
    raw.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, **SPECIAL)
    tokenizer.add_tokens(list(tokens))
    return tokenizer


def build_scratch_model(cfg: ScratchConfig, tokenizer, seed: int = 0, input_dropout: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
    if cfg.arch not in classes:
        raise ValueError(f"unknown scratch architecture {cfg.arch!r}; use llama or qwen2")
    config_cls, model_cls = classes[cfg.arch]
    config = config_cls(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
                        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.kv_heads,
                        max_position_embeddings=cfg.max_positions, tie_word_embeddings=cfg.tie_embeddings,
                        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                        bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(seed)
    model = model_cls(config)
    add_residual_dropout(model, cfg.dropout, input_dropout)
    return model


def add_residual_dropout(model, p: float, inputs: bool = True) -> None:
    """Dropout on the token embeddings and on each attention and MLP output before its residual add (as GPT-2
    and SASRec have), which LLaMA and Qwen2 lack: small models trained for many epochs on a catalogue of a few
    thousand items overfit without it. Forward hooks, so the weights stay plain LLaMA/Qwen2; train mode only.
    No attention dropout: it moves attention off the fused kernel (a third slower forward and backward on CPU).
    `inputs=False` leaves the token embeddings alone (the parallel head drops its item inputs itself)."""
    if p == 0.0:
        return

    def drop(module, _inputs, output):
        if isinstance(output, tuple):
            return (torch.nn.functional.dropout(output[0], p, module.training), *output[1:])
        return torch.nn.functional.dropout(output, p, module.training)

    if inputs:
        model.get_input_embeddings().register_forward_hook(drop)
    for layer in model.model.layers:
        layer.self_attn.register_forward_hook(drop)
        layer.mlp.register_forward_hook(drop)


def add_code_tokens(model, tokenizer, semid: SemanticIdTokenizer) -> list[int]:
    """Add every code token; resize the embeddings to max(len(tokenizer), current rows) (Qwen pads its
    vocabulary beyond the tokenizer); returns the code tokens' ids."""
    tokenizer.add_tokens(semid.all_tokens())
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    ids = tokenizer.convert_tokens_to_ids(semid.all_tokens())
    rows = model.get_input_embeddings().weight.shape[0]
    bad = [t for t, i in zip(semid.all_tokens(), ids) if i is None or i >= rows or i == tokenizer.unk_token_id]
    if bad:
        raise DataError(f"{len(bad)} code tokens did not get an embedding row (e.g. {bad[0]})")
    if model.get_output_embeddings() is not None and model.get_output_embeddings().weight.shape[0] < rows:
        raise DataError("the output head has fewer rows than the input embedding after resizing")
    return ids


def apply_lora(model, settings: LoraSettings, code_token_ids: list[int]):
    """LoRA adapters plus trainable code-token rows in the input embedding and an untied output head (none when
    `code_token_ids` is empty)."""
    from peft import LoraConfig, get_peft_model

    tied = model.get_output_embeddings() is None or (
        model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr())
    indices = {"embed_tokens": code_token_ids} if tied else {"embed_tokens": code_token_ids, "lm_head": code_token_ids}
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, trainable_token_indices=indices if code_token_ids
                        else None, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


# ---- the whole model ---------------------------------------------------------------------------------------

@dataclass
class GenRecModel:
    model: torch.nn.Module
    tokenizer: object
    semid: SemanticIdTokenizer
    backbone: BackboneConfig
    info: dict = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)   # item id -> display title, for people reading output
    decode_options: dict = field(default_factory=dict)     # defaults for recommend(): beams, exact, batch_size
    head: ParallelHead | None = None                       # the parallel head's weights (None: autoregressive)

    @classmethod
    def create(cls, backbone: BackboneConfig, semid: SemanticIdTokenizer, texts: list[str] | None = None,
               seed: int = 0, prompts: dict[str, str] | None = None, head: Head = "autoregressive",
               item_inputs: Literal["mean", "sum"] = "mean") -> GenRecModel:
        """A fresh model for `semid`: scratch (word vocabulary from `texts`) or pretrained + code tokens.

        `head="parallel"` adds the parallel semantic-ID head; its inputs are items (the `item_inputs` of their
        code-token embeddings), so a scratch vocabulary holds the code tokens only.

        `prompts` are the templates the model is asked with at inference (`seqrec`: the next-item prompt, with a
        `{history}` field); they are saved with the model, so later edits of tasks/templates.py cannot change
        what a trained model is given. Default: the templates of this genrec's tasks."""
        if head not in HEADS or item_inputs not in ("mean", "sum"):
            raise DataError(f"head must be one of {', '.join(HEADS)} and item_inputs mean or sum, not {head!r} / "
                            f"{item_inputs!r}")
        parallel = head == "parallel"
        if backbone.scratch is not None:
            tokenizer = build_word_tokenizer([] if parallel else texts or [], semid.all_tokens())
            model = build_scratch_model(backbone.scratch, tokenizer, seed, input_dropout=not parallel)
            add_code_tokens(model, tokenizer, semid)
        else:
            model, tokenizer = load_pretrained(backbone.name)
            ids = add_code_tokens(model, tokenizer, semid)
            if backbone.lora is not None:
                model = apply_lora(model, backbone.lora, ids)
        tokenizer.padding_side = "left"
        prompts = prompts or templates.eval_prompts()
        info = {"semid_fingerprint": semid.fingerprint(), "prompts": prompts, "head": head}
        if parallel:
            info["item_inputs"] = item_inputs
            torch.manual_seed(seed)
            return cls(model, tokenizer, semid, backbone, info, head=ParallelHead(model.config.hidden_size,
                                                                                 semid.num_levels))
        return cls(model, tokenizer, semid, backbone, info)

    @property
    def is_peft(self) -> bool:
        return hasattr(self.model, "peft_config")

    def save_pretrained(self, out_dir: str | Path) -> None:
        out = mark(out_dir)
        self.model.save_pretrained(out)  # adapter + trainable token rows under LoRA, else the whole model
        self.tokenizer.save_pretrained(out)
        self.semid.save_pretrained(out / "semid")
        info = {**self.info, "backbone": asdict(self.backbone), "peft": self.is_peft,
                "semid_fingerprint": self.semid.fingerprint()}
        (out / CONFIG_FILE).write_text(json.dumps(info, indent=2))
        (out / "titles.json").write_text(json.dumps(self.titles))
        if self.head is not None:
            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(out / HEAD_FILE))
        write_model_card(out)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> GenRecModel:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise DataError(f"{folder}: no {CONFIG_FILE}; not a model saved by genrec")
        info = json.loads((folder / CONFIG_FILE).read_text())
        weights = ["adapter_model.safetensors"] if info.get("peft") else ["model.safetensors"]
        parallel = info.get("head", "autoregressive") == "parallel"
        weights += [HEAD_FILE] if parallel else []
        missing = [f for f in ["tokenizer.json", "semid/config.json", *weights] if not (folder / f).is_file()]
        if missing and not (not info.get("peft") and list(folder.glob("model-*.safetensors"))):
            raise DataError(f"{folder}: missing {', '.join(missing)}; the model folder is incomplete")
        if "{history}" not in info.get("prompts", {}).get("seqrec", ""):
            raise DataError(f"{folder}/{CONFIG_FILE}: no `prompts.seqrec` template with a {{history}} field (a model "
                            "saved by an older genrec); finetune it again")
        backbone = BackboneConfig(**info["backbone"])
        semid = SemanticIdTokenizer.from_pretrained(folder / "semid")
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except Exception as err:  # a damaged tokenizer.json raises several types
            raise DataError(f"{folder}: the tokenizer cannot be loaded ({describe(err)})") from None
        ids = tokenizer.convert_tokens_to_ids(semid.all_tokens())
        missing = [t for t, i in zip(semid.all_tokens(), ids) if i is None or i == tokenizer.unk_token_id]
        if missing:
            raise DataError(f"{folder}/tokenizer.json: {len(missing)} code tokens are missing (e.g. {missing[0]}); "
                            "the tokenizer does not belong to these semantic IDs")
        try:
            if info.get("peft"):
                from peft import PeftModel

                base, _ = load_pretrained(backbone.name)
                base.resize_token_embeddings(max(len(tokenizer), base.get_input_embeddings().weight.shape[0]))
                model = PeftModel.from_pretrained(base, folder)
            else:
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
                if backbone.scratch is not None:
                    add_residual_dropout(model, backbone.scratch.dropout, inputs=not parallel)
            head = None
            if parallel:
                head = ParallelHead(model.config.hidden_size, semid.num_levels)
                head.load_state_dict(load_file(str(folder / HEAD_FILE)))
        except DataError:
            raise
        except Exception as err:  # safetensors, OS, shape and config errors alike mean a damaged folder
            raise DataError(f"{folder}: the weights cannot be loaded ({describe(err)})") from None
        named = [*model.named_parameters(), *(head.named_parameters(prefix="head") if head is not None else [])]
        bad = [name for name, p in named if not torch.isfinite(p).all()]
        if bad:
            raise DataError(f"{folder}: the weights hold NaN or infinite values ({bad[0]}); the file is damaged or "
                            "training diverged")
        tokenizer.padding_side = "left"
        titles = json.loads((folder / "titles.json").read_text()) if (folder / "titles.json").is_file() else {}
        return cls(model.eval(), tokenizer, semid, backbone, info, titles, head=head.eval() if head else None)

    # ---- prompts and recommendations -------------------------------------------------------------------

    def render(self, prompt) -> str:
        """A task prompt as the model sees it: the chat template for chat backbones, else the raw text."""
        if isinstance(prompt, list):
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        if self.backbone.chat:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def trie(self, candidates: np.ndarray | None = None) -> CodeTrie:
        if getattr(self, "_trie", None) is None:
            self._trie = CodeTrie.from_semid(self.semid, self.tokenizer)
        return self._trie if candidates is None else self._trie.restrict(candidates)

    def history_prompt(self, history: np.ndarray) -> str:
        """The next-item prompt the model was trained to answer (its saved `seqrec` template), as validation
        and test rows use."""
        tokens = ", ".join(self.semid.item_to_tokens(int(i)) for i in history)
        return self.info["prompts"]["seqrec"].format(history=tokens)

    @torch.no_grad()
    def recommend_prompts(self, prompts: list, k: int = 10, beams: int | None = None, exact: bool = False,
                          exclude=None, batch_size: int = 32, candidates: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(items, scores), each (len(prompts), k), best first; -1 where fewer than k items exist."""
        if k < 1:
            raise ValueError("k must be at least 1")
        trie = self.trie(candidates)
        beams = max(beams or k, k)
        self.model.eval()
        items = np.full((len(prompts), k), -1, dtype=np.int64)
        scores = np.full((len(prompts), k), -np.inf, dtype=np.float32)
        for start in range(0, len(prompts), batch_size):
            chunk = [self.render(p) for p in prompts[start : start + batch_size]]
            batch = self.tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            skip = None if exclude is None else exclude[start : start + batch_size]
            if exact:
                top, score = exact_topk(self.model, batch["input_ids"], trie, k, batch["attention_mask"], skip)
            else:
                top, score = beam_search(self.model, batch["input_ids"], trie, beams, batch["attention_mask"], skip)
            width = min(k, top.shape[1])
            items[start : start + len(chunk), :width] = top[:, :width].numpy()
            scores[start : start + len(chunk), :width] = score[:, :width].numpy()
        return items, scores

    def recommend(self, histories: list[np.ndarray], k: int = 10, exclude_history: bool = False,
                  **kwargs) -> np.ndarray:
        """The `Recommender` protocol: top-k item ids for each history (dataset item indices); with
        `exclude_history` the search itself skips history items, so the list stays k long."""
        return self.recommend_scored(histories, k, exclude_history, **kwargs)[0]

    def recommend_scored(self, histories: list[np.ndarray], k: int = 10, exclude_history: bool = False,
                         **kwargs) -> tuple[np.ndarray, np.ndarray]:
        """(items, scores) by either head, with `decode_options` as defaults for the keyword options
        (beams, exact, batch_size, candidates)."""
        options = {**self.decode_options, **kwargs}
        if exclude_history:
            options["exclude"] = histories
        if self.head is not None:
            return self.recommend_items(histories, k, **options)
        options["exact"] = bool(options.get("exact"))  # None: the head's default, beam search here
        return self.recommend_prompts([self.history_prompt(h) for h in histories], k, **options)

    # ---- the parallel head ------------------------------------------------------------------------------

    @property
    def max_history(self) -> int:
        return int(self.info.get("max_history", MAX_HISTORY))

    def net(self) -> ParallelNet:
        """The decoder, item inputs and parallel head as one module (the same weights, not a copy)."""
        if self.head is None:
            raise DataError("this model has the autoregressive head; item-level scoring needs head=parallel")
        if getattr(self, "_net", None) is None or self._net.decoder is not self._decoder():
            dropout = self.backbone.scratch.dropout if self.backbone.scratch is not None else 0.0
            level_tokens = [torch.tensor(self.tokenizer.convert_tokens_to_ids(self.semid.level_tokens(level)))
                            for level in range(self.semid.num_levels)]
            self._net = ParallelNet(self._decoder(), self.head,
                                    torch.from_numpy(self.semid.codes), level_tokens, self.tokenizer.pad_token_id,
                                    self.info.get("item_inputs", "mean"), dropout,
                                    self.info.get("parallel_loss", "codes"))
        return self._net

    def _decoder(self):
        base = self.model.get_base_model() if self.is_peft else self.model
        return base.get_decoder()

    @torch.no_grad()
    def recommend_items(self, histories: list[np.ndarray], k: int = 10, beams: int | None = None,
                        exact: bool | None = None, exclude=None, batch_size: int = 256,
                        candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Parallel head: (items, scores), each (users, k), best first. Exact (every item scored) unless
        `exact=False`, which walks the code trie with `beams` prefixes per level (for huge catalogues)."""
        if k < 1:
            raise ValueError("k must be at least 1")
        net = self.net().eval()
        codes = net.codes.cpu()
        pool = len(codes) if candidates is None else len(candidates)
        step = max(1, min(batch_size, DENSE_CELLS // max(1, pool)))
        items = np.full((len(histories), k), -1, dtype=np.int64)
        scores = np.full((len(histories), k), -np.inf, dtype=np.float32)
        for start in range(0, len(histories), step):
            chunk = histories[start : start + step]
            logp = net.user_log_probs(chunk, self.max_history).cpu()
            skip = None if exclude is None else exclude[start : start + step]
            if exact is False:
                top, score = trie_beam_search(logp, self.trie(candidates), max(beams or k, k), k, skip)
            else:
                top, score = dense_topk(logp, codes, k, skip, candidates)
            width = top.shape[1]
            items[start : start + len(chunk), :width] = top.numpy()
            scores[start : start + len(chunk), :width] = score.numpy()
        return items, scores

    @torch.no_grad()
    def score_items(self, histories: list[np.ndarray]) -> np.ndarray:
        """(users, items): the parallel head's score of every item after each history (a log-probability)."""
        net = self.net().eval()
        codes = net.codes.cpu()
        return item_scores(net.user_log_probs(histories, self.max_history).cpu(), codes).numpy()
