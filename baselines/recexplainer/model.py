"""The surrogate: a causal LM, the frozen target recommender, and connectors from its vectors to the LM's inputs.

In the I and H variants the input embedding at a `<user>` token is the user connector's projection of the
recommender's user vector (its representation after the row's history), and at an `<item>` token the item
connector's projection of the recommender's item vector; every other position keeps its token embedding.
A connector is RecExplainer's: Linear(rec, lm/2), GELU, Linear(lm/2, lm). The recommender never trains.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from genrec.atomic import mark
from genrec.data import DataError
from genrec.errors import describe
from genrec.model import BackboneConfig, apply_lora, build_scratch_model, build_word_tokenizer
from genrec.sources import load_pretrained
from tasks.explainer import ITEM_TOKEN, USER_TOKEN, VARIANTS

from ..methods import load as load_recommender
from ..sequential import SequentialRecommender

CONFIG_FILE = "explainer.json"
CONNECTORS_FILE = "connectors.safetensors"


def connector(rec_width: int, lm_width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(rec_width, lm_width // 2), nn.GELU(), nn.Linear(lm_width // 2, lm_width))


class Connectors(nn.Module):
    def __init__(self, rec_width: int, lm_width: int):
        super().__init__()
        self.user, self.item = connector(rec_width, lm_width), connector(rec_width, lm_width)


class Explainer:
    """LM + tokenizer (with `<user>` and `<item>`) + connectors + the frozen recommender; one folder."""

    def __init__(self, lm, tokenizer, recommender: SequentialRecommender, connectors: Connectors, variant: str,
                 backbone: BackboneConfig, titles: list[str], item_ids: list[str], info: dict | None = None):
        if variant not in VARIANTS:
            raise DataError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        self.lm, self.tokenizer, self.recommender, self.connectors = lm, tokenizer, recommender, connectors
        self.variant, self.backbone, self.titles, self.info = variant, backbone, titles, info or {}
        self.item_ids = list(item_ids)  # the dataset's ids, item index -> id
        self.user_id, self.item_id = tokenizer.convert_tokens_to_ids([USER_TOKEN, ITEM_TOKEN])
        recommender.model.eval().requires_grad_(False)

    @classmethod
    def create(cls, backbone: BackboneConfig, recommender: SequentialRecommender, variant: str, titles: list[str],
               item_ids: list[str], texts: list[str], seed: int = 0) -> Explainer:
        """A fresh surrogate: scratch (word vocabulary from `texts`) or pretrained, LoRA or full."""
        tokens = [USER_TOKEN, ITEM_TOKEN]
        if backbone.scratch is not None:
            tokenizer = build_word_tokenizer(texts, tokens)
            lm = build_scratch_model(backbone.scratch, tokenizer, seed)
        else:
            lm, tokenizer = load_pretrained(backbone.name)
            tokenizer.add_tokens(tokens, special_tokens=True)
            if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
                lm.resize_token_embeddings(len(tokenizer), mean_resizing=True)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            if backbone.lora is not None:  # <user> and <item> rows are never read (connectors replace them)
                lm = apply_lora(lm, backbone.lora, [])
        torch.manual_seed(seed)
        connectors = Connectors(recommender.model.cfg.hidden, lm.config.hidden_size)
        return cls(lm, tokenizer, recommender, connectors, variant, backbone, titles, item_ids)

    # ---- inputs ---------------------------------------------------------------------------------------------

    def embed(self, input_ids: torch.Tensor, histories: list, items: list) -> torch.Tensor:
        """Input embeddings of a batch: token embeddings, with the connectors' projections at `<user>` (of the
        recommender's vector after `histories[row]`) and at each `<item>` (of `items[row]`, in order)."""
        tokens = self.lm.get_input_embeddings()(input_ids)
        users, item_at = input_ids == self.user_id, input_ids == self.item_id
        if self.variant == "B" or not (users.any() or item_at.any()):
            return tokens
        per_row = item_at.sum(1).tolist()
        bad = [r for r, (n, row) in enumerate(zip(per_row, items)) if n != len(row)]
        if bad or int(users.sum(1).max()) > 1:
            row = bad[0] if bad else int(users.sum(1).argmax())
            raise DataError(f"batch row {row}: {per_row[row]} {ITEM_TOKEN} tokens for {len(items[row])} items and "
                            f"{int(users[row].sum())} {USER_TOKEN} tokens (at most one); the prompt was cut or "
                            "built for another variant")
        extra = torch.zeros_like(tokens)
        with torch.no_grad():  # the recommender is frozen
            model = self.recommender.model
            rows = users.any(1).nonzero()[:, 0].tolist()
            user_vectors = model.user_vectors([np.asarray(histories[r], dtype=np.int64) for r in rows]) if rows \
                else None
            flat = torch.tensor([i for row in items for i in row], dtype=torch.long)
            item_vectors = model.item_table()[flat] if len(flat) else None
        if user_vectors is not None:
            extra[users] = self.connectors.user(user_vectors.to(tokens.device)).to(tokens.dtype)
        if item_vectors is not None:
            extra[item_at] = self.connectors.item(item_vectors.to(tokens.device)).to(tokens.dtype)
        return torch.where((users | item_at)[..., None], extra, tokens)

    def prompt_embeds(self, prompt: str, history, items) -> torch.Tensor:
        ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]  # as trl tokenized the training rows
        return self.embed(ids, [history], [items])

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ---- saving -----------------------------------------------------------------------------------------------

    @property
    def is_peft(self) -> bool:
        return hasattr(self.lm, "peft_config")

    def save_pretrained(self, folder: str | Path) -> None:
        out = mark(folder)
        self.lm.save_pretrained(out / "lm")  # the adapter under LoRA, else the whole model
        self.tokenizer.save_pretrained(out / "lm")
        self.recommender.save_pretrained(out / "recommender")
        save_file({k: v.contiguous() for k, v in self.connectors.state_dict().items()}, str(out / CONNECTORS_FILE))
        info = {**self.info, "variant": self.variant, "backbone": asdict(self.backbone), "peft": self.is_peft,
                "rec_width": self.recommender.model.cfg.hidden, "titles": self.titles, "item_ids": self.item_ids}
        (out / CONFIG_FILE).write_text(json.dumps(info, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> Explainer:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise DataError(f"{folder}: no {CONFIG_FILE}; not a surrogate saved by `genrec baseline recexplainer`")
        try:
            info = json.loads((folder / CONFIG_FILE).read_text())
            backbone = BackboneConfig(**info["backbone"])
            recommender = load_recommender(folder / "recommender")
            tokenizer = AutoTokenizer.from_pretrained(folder / "lm")
            if info["peft"]:
                from peft import PeftModel

                base, _ = load_pretrained(backbone.name)
                base.resize_token_embeddings(max(len(tokenizer), base.get_input_embeddings().weight.shape[0]))
                lm = PeftModel.from_pretrained(base, folder / "lm")
            else:
                lm = AutoModelForCausalLM.from_pretrained(folder / "lm", dtype=torch.float32)
            connectors = Connectors(info["rec_width"], lm.config.hidden_size)
            connectors.load_state_dict(load_file(str(folder / CONNECTORS_FILE)))
        except DataError:
            raise
        except Exception as err:  # json, safetensors, OS, shape and config errors alike mean a damaged folder
            raise DataError(f"{folder}: the surrogate cannot be loaded ({describe(err)})") from None
        lm.eval()
        connectors.eval()
        return cls(lm, tokenizer, recommender, connectors, info["variant"], backbone, info["titles"],
                   info["item_ids"], info)
