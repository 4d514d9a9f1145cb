"""Text written by a local causal LM (search queries, preference sentences), cached on disk.

LC-Rec asks GPT for these; hosted models are out of reach here, so a local model (SmolLM2-135M-Instruct
offline) writes them. Every answer is cached by model and prompt, so a rebuild costs nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from genrec.atomic import atomic_file
from genrec.sources import load_pretrained


class Generator:
    """Generation with a transformers causal LM (greedy, or sampled with `sample`); the chat template is used
    when the model has one. `lm=(tokenizer, model)` uses an already loaded model; `model` then only names the
    cache, so a changed model (e.g. after finetuning) needs a new name."""

    def __init__(self, model: str, cache_dir: str | Path | None = None, batch_size: int = 16,
                 max_new_tokens: int = 40, lm: tuple | None = None):
        self.model_name, self.batch_size, self.max_new_tokens = model, batch_size, max_new_tokens
        self.cache_path = Path(cache_dir) / f"{_digest(model)}.json" if cache_dir else None
        self.cache: dict[str, str] = (json.loads(self.cache_path.read_text())
                                      if self.cache_path and self.cache_path.is_file() else {})
        self._lm = lm

    def _load(self):
        """The same loading as a finetuned backbone: a GGUF file becomes a plain model, so it can be trained
        (the knowledge writer's LoRA alignment) and saved."""
        model, tokenizer = load_pretrained(self.model_name)
        tokenizer.padding_side = "left"
        return tokenizer, model.eval()

    def _render(self, tokenizer, prompt: str) -> str:
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                 add_generation_prompt=True)
        return prompt + "\n"

    @property
    def lm(self) -> tuple:
        """(tokenizer, model), loaded on first use."""
        if self._lm is None:
            self._lm = self._load()
        return self._lm

    def render(self, prompt: str) -> str:
        """The exact text the model is given for `prompt`."""
        return self._render(self.lm[0], prompt)

    @torch.no_grad()
    def _run(self, prompts: list[str], samples: int = 1, temperature: float = 1.0) -> list[str]:
        """`samples` answers per prompt, prompt by prompt; greedy when samples == 1."""
        tokenizer, model = self.lm
        out = []
        for start in tqdm(range(0, len(prompts), self.batch_size), desc=f"generating with {self.model_name}"):
            texts = [self.render(p) for p in prompts[start : start + self.batch_size]]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            sampling = ({"do_sample": True, "temperature": temperature, "num_return_sequences": samples}
                        if samples > 1 else {"do_sample": False})
            ids = model.generate(**batch, max_new_tokens=self.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                 **sampling)
            answers = tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [" ".join(a.split()).strip(' "') for a in answers]
        return out

    def generate(self, prompts: list[str]) -> list[str]:
        """One greedy answer per prompt ('' when the model wrote nothing); only uncached prompts reach the model."""
        return [answers[0] for answers in self._cached(prompts, 1, 1.0, None)]

    def sample(self, prompts: list[str], samples: int, temperature: float = 0.9, seed: int = 0) -> list[list[str]]:
        """`samples` sampled answers per prompt (reproducible for a seed, cached like `generate`)."""
        return self._cached(prompts, samples, temperature, seed)

    def _cached(self, prompts: list[str], samples: int, temperature: float, seed: int | None) -> list[list[str]]:
        tag = "" if samples == 1 else f"\0{samples}\0{temperature}\0{seed}"
        todo = [p for p in dict.fromkeys(prompts) if _digest(p + tag) not in self.cache]
        if todo:
            if seed is not None:
                torch.manual_seed(seed)
            answers = self._run(todo, samples, temperature)
            for i, prompt in enumerate(todo):
                group = answers[i * samples : (i + 1) * samples]
                self.cache[_digest(prompt + tag)] = group[0] if samples == 1 else group
            self._save()
        return [[self.cache[_digest(p + tag)]] if samples == 1 else self.cache[_digest(p + tag)] for p in prompts]

    def _save(self) -> None:
        if self.cache_path is None:
            return
        with atomic_file(self.cache_path) as tmp:
            json.dump(self.cache, tmp)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]
