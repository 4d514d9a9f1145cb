"""Text written by a local causal LM (search queries, preference sentences), cached on disk.

LC-Rec asks GPT for these; hosted models are out of reach here, so a local model (SmolLM2-135M-Instruct
offline) writes them. Every answer is cached by model and prompt, so a rebuild costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genrec.data import DataError
from genrec.sources import offline_hint, resolve


class Generator:
    """Greedy generation with a transformers causal LM; the chat template is used when the model has one."""

    def __init__(self, model: str, cache_dir: str | Path | None = None, batch_size: int = 16,
                 max_new_tokens: int = 40):
        self.model_name, self.batch_size, self.max_new_tokens = model, batch_size, max_new_tokens
        self.cache_path = Path(cache_dir) / f"{_digest(model)}.json" if cache_dir else None
        self.cache: dict[str, str] = (json.loads(self.cache_path.read_text())
                                      if self.cache_path and self.cache_path.is_file() else {})
        self._lm = None

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, gguf = resolve(self.model_name)
        kwargs = {"gguf_file": gguf} if gguf else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left", **kwargs)
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()
        except OSError as err:
            raise DataError(offline_hint(self.model_name)) from err
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, model

    def _render(self, tokenizer, prompt: str) -> str:
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
        return prompt + "\n"

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> list[str]:
        if self._lm is None:
            self._lm = self._load()
        tokenizer, model = self._lm
        out = []
        for start in tqdm(range(0, len(prompts), self.batch_size), desc=f"generating with {self.model_name}"):
            texts = [self._render(tokenizer, p) for p in prompts[start : start + self.batch_size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids = model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            answers = tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [" ".join(a.split()).strip(' "') for a in answers]
        return out

    def generate(self, prompts: list[str]) -> list[str]:
        """One answer per prompt ('' when the model wrote nothing); only uncached prompts reach the model."""
        todo = [p for p in dict.fromkeys(prompts) if _digest(p) not in self.cache]
        if todo:
            for prompt, answer in zip(todo, self._run(todo)):
                self.cache[_digest(prompt)] = answer
            self._save()
        return [self.cache[_digest(p)] for p in prompts]

    def _save(self) -> None:
        if self.cache_path is None:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.cache_path.parent, delete=False, suffix=".json") as tmp:
            json.dump(self.cache, tmp)
        os.replace(tmp.name, self.cache_path)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]
