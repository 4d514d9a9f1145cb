"""SemanticIdTokenizer: item <-> code tuple <-> token string, saved and loaded like a Hugging Face object.

Token strings follow LC-Rec: level letters a, b, c, ... so item 7 with codes (12, 3, 200) is
`<a_12><b_3><c_200>`; long IDs (product quantizers, 32 positions) go on with aa, ab, ... after z. The
tokenizer keeps the quantizer (and the text template and encoder it was built with) so `add_items` can give
new items codes without retraining, still unique.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from genrec.atomic import mark
from genrec.errors import DataError, describe

from .collaborative import unit_rows
from .quantizers import build_quantizer

VERSION = 1
_TOKEN = re.compile(r"<([a-z]+)_(\d+)>")


class SemanticIdTokenizer:
    def __init__(self, codes: np.ndarray, item_ids: list[str], level_sizes: list[int], quantizer=None,
                 config: dict | None = None):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) != len(item_ids) or codes.shape[1] != len(level_sizes):
            raise DataError(f"codes of shape {codes.shape} do not fit {len(item_ids)} items x "
                            f"{len(level_sizes)} levels")
        if (codes < 0).any() or (codes >= np.asarray(level_sizes)).any():
            raise DataError("a code is outside its level's codebook")
        self.codes, self.item_ids, self.level_sizes = codes, list(item_ids), [int(s) for s in level_sizes]
        self.quantizer, self.config = quantizer, dict(config or {})
        self._item_of = {tuple(row): i for i, row in enumerate(codes.tolist())}
        if len(self._item_of) != len(codes):
            raise DataError(f"{len(codes) - len(self._item_of)} items share a code tuple; semantic IDs must be unique")

    # ---- lookups ---------------------------------------------------------------------------------------

    @property
    def num_items(self) -> int:
        return len(self.codes)

    @property
    def num_levels(self) -> int:
        return len(self.level_sizes)

    @staticmethod
    def token(level: int, code: int) -> str:
        return f"<{level_name(level)}_{code}>"

    def level_tokens(self, level: int) -> list[str]:
        """Every token of one level, in code order."""
        return [self.token(level, c) for c in range(self.level_sizes[level])]

    def all_tokens(self) -> list[str]:
        return [t for level in range(self.num_levels) for t in self.level_tokens(level)]

    def item_to_codes(self, item: int) -> tuple[int, ...]:
        return tuple(int(c) for c in self.codes[item])

    def codes_to_item(self, codes) -> int | None:
        """The item with these codes, or None when no item has them."""
        return self._item_of.get(tuple(int(c) for c in codes))

    def item_to_tokens(self, item: int) -> str:
        return "".join(self.token(level, c) for level, c in enumerate(self.codes[item]))

    def tokens_to_item(self, text: str) -> int | None:
        """Parse `<a_1><b_2>...`; None when the tokens are not a complete, known ID."""
        parts = _TOKEN.findall(text)
        if len(parts) != self.num_levels or any(p[0] != level_name(i) for i, p in enumerate(parts)):
            return None
        return self.codes_to_item(int(p[1]) for p in parts)

    def fingerprint(self) -> str:
        """A short hash of items and codes: SFT data and models record it, so a mismatch is caught."""
        digest = hashlib.sha256(json.dumps([self.level_sizes, self.item_ids]).encode())
        digest.update(self.codes.tobytes())
        return digest.hexdigest()[:16]

    # ---- cold start ------------------------------------------------------------------------------------

    @torch.no_grad()
    def add_items(self, item_ids: list[str], embeddings: np.ndarray) -> list[int]:
        """Codes for new items from their text embeddings, by the trained quantizer, without retraining.
        A collaborative opq / rqkmeans codebook takes text embeddings too (or text + collaborative vectors).

        Each new item takes its quantizer codes when free; otherwise the nearest free code of the last
        quantizer level under the same prefix (and a free disambiguation code, where that level exists).
        Returns the new items' indices.
        """
        if self.quantizer is None:
            raise DataError("this tokenizer has no quantizer (built from fixed codes); cannot code new items")
        clash = set(item_ids) & set(self.item_ids)
        if clash:
            raise DataError(f"items already coded: {sorted(clash)[:5]}")
        if embeddings.ndim != 2 or len(embeddings) != len(item_ids):
            raise DataError(f"embeddings of shape {embeddings.shape} for {len(item_ids)} new items")
        joint = self.config.get("collaborative")
        if joint and embeddings.shape[1] == joint["text_dim"]:  # no interactions yet: the catalogue's mean stands in
            mean = np.tile(np.asarray(joint["mean"], dtype=np.float32), (len(embeddings), 1))
            embeddings = np.hstack([unit_rows(embeddings), mean])
        if embeddings.shape[1] != self.config.get("embedding_dim", embeddings.shape[1]):
            raise DataError(f"embeddings of width {embeddings.shape[1]}; this codebook codes width "
                            f"{self.config['embedding_dim']} (the encoder it was built with: "
                            f"{self.config.get('encoder', {}).get('name', '?')})")
        codes, last_dist = self.quantizer.assign(torch.from_numpy(embeddings).float())
        q_levels = len(self.quantizer.levels)
        new_rows = []
        for row, dist in zip(codes.numpy(), last_dist.numpy()):
            prefix = tuple(int(c) for c in row[:-1])
            candidates = ((*prefix, int(last), *tail) for last in np.argsort(dist, kind="stable")
                          for tail in np.ndindex(*self.level_sizes[q_levels:]))
            chosen = next((c for c in candidates if c not in self._item_of), None)
            if chosen is None:
                raise DataError(f"prefix {prefix} has no free code left; rebuild the codebook with larger levels")
            self._item_of[chosen] = self.num_items + len(new_rows)
            new_rows.append(chosen)
        start = self.num_items
        self.codes = np.concatenate([self.codes, np.asarray(new_rows, dtype=np.int64).reshape(-1, self.num_levels)])
        self.item_ids += list(item_ids)
        return list(range(start, self.num_items))

    # ---- disk ------------------------------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | Path) -> None:
        out = mark(out_dir)
        config = {"genrec_semid_version": VERSION, "level_sizes": self.level_sizes, "num_items": self.num_items,
                  **self.config}
        tensors = {"codes": torch.from_numpy(self.codes)}
        if self.quantizer is not None:
            tensors.update({f"quantizer.{k}": v.contiguous() for k, v in self.quantizer.state_dict().items()})
        save_file(tensors, str(out / "model.safetensors"))
        table = {item_id: self.item_to_tokens(i) for i, item_id in enumerate(self.item_ids)}
        (out / "codes.json").write_text(json.dumps(table, indent=0))
        (out / "config.json").write_text(json.dumps(config, indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> SemanticIdTokenizer:
        folder = Path(folder)
        for name in ("config.json", "model.safetensors", "codes.json"):
            if not (folder / name).is_file():
                raise DataError(f"{folder}: missing {name}; not a saved SemanticIdTokenizer")
        try:
            config = json.loads((folder / "config.json").read_text())
            table = json.loads((folder / "codes.json").read_text())
            tensors = load_file(str(folder / "model.safetensors"))
        except Exception as err:  # json, OS and safetensors errors alike mean a damaged folder
            raise DataError(f"{folder}: a file is corrupt ({describe(err)})") from None
        if config.get("genrec_semid_version") != VERSION:
            raise DataError(f"{folder}/config.json: version {config.get('genrec_semid_version')!r}, this genrec "
                            f"reads version {VERSION}; rebuild the codebook")
        codes = tensors.pop("codes").numpy()
        if len(table) != len(codes) or len(codes) != config.get("num_items"):
            raise DataError(f"{folder}: codes.json lists {len(table)} items, model.safetensors {len(codes)}, "
                            f"config.json {config.get('num_items')}; the folder is inconsistent")
        level_sizes = config.pop("level_sizes")
        config.pop("genrec_semid_version"), config.pop("num_items")
        check_codes(codes, level_sizes, f"{folder}/model.safetensors")
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise DataError(f"{folder}/model.safetensors: {bad[0]} holds NaN or infinite values; rebuild the codebook")
        quantizer = None
        if tensors and "quantizer" in config:
            quantizer = build_quantizer(config["quantizer"], dim=config["embedding_dim"])
            try:
                quantizer.load_state_dict({k[len("quantizer."):]: v for k, v in tensors.items()})
            except RuntimeError as err:
                raise DataError(f"{folder}/model.safetensors: the quantizer weights do not fit its config "
                                f"({describe(err)})") from None
            quantizer.eval()
        tokenizer = cls(codes, list(table), level_sizes, quantizer, config)
        if any(tokenizer.item_to_tokens(i) != t for i, t in enumerate(table.values())):
            raise DataError(f"{folder}: codes.json does not match model.safetensors")
        return tokenizer


def level_name(level: int) -> str:
    """a, b, ..., z, aa, ab, ...: the letters of a code position in its token (bijective base 26)."""
    name, n = "", level + 1
    while n:
        n, rest = divmod(n - 1, 26)
        name = string.ascii_lowercase[rest] + name
    return name


def check_codes(codes: np.ndarray, level_sizes: list[int], where: str) -> None:
    """Codes must be an (items, levels) table of in-range ids, one distinct tuple per item."""
    if codes.ndim != 2 or codes.shape[1] != len(level_sizes):
        raise DataError(f"{where}: codes have shape {tuple(codes.shape)}, expected (items, {len(level_sizes)})")
    out_of_range = (codes < 0) | (codes >= np.asarray(level_sizes))
    if out_of_range.any():
        row, level = map(int, np.argwhere(out_of_range)[0])
        raise DataError(f"{where}: item {row} has code {int(codes[row, level])} at level {level + 1}, outside "
                        f"0..{level_sizes[level] - 1}")
    if len(np.unique(codes, axis=0)) != len(codes):
        raise DataError(f"{where}: two items share a semantic ID; the codes are damaged, rebuild the codebook")

