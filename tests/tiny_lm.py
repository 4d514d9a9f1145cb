"""A tiny word-level causal LM saved like a hub model, for tests that need a real transformers model."""

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<eos>", "<unk>"]


def save_tiny_lm(folder: Path, words: list[str], tied: bool = True, extra_rows: int = 0, layers: int = 1) -> str:
    """Tokenizer over SPECIAL + words; `extra_rows` pads the embedding beyond the tokenizer (as Qwen does)."""
    vocab = {w: i for i, w in enumerate([*SPECIAL, *words])}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab) + extra_rows, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         tie_word_embeddings=tied, pad_token_id=0, eos_token_id=1)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
