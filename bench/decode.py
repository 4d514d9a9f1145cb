"""Decoding speed: our constrained beam search vs transformers' generate + prefix_allowed_tokens_fn.

    python bench/decode.py [--items 20000,1000000] [--beams 20,50] [--batch 1,32] [--json bench/results/decode.json]
    python bench/decode.py --model smollm2 --items 20000 --batch 1 --json bench/results/decode_smollm2.json
                                          # a real backbone (folder, hub name, GGUF, alias) instead

Speed does not depend on the weights, so by default the model is a randomly initialised LLaMA-architecture
LM (4 layers, width 256, 32k text vocabulary + 3 x 256 code tokens), on one process. Codes are random unique
3-level tuples. Every configuration runs: ours (constrained), ours with no constraint at all (the cost of
the constraint), and transformers' beam search with a Python-dict trie in prefix_allowed_tokens_fn (the
usual way), checking that ours returns the same items in the same order. "model forwards alone" times
the forwards any exact beam search must run (the prompt once, one step per level for all beams, full-vocabulary
normaliser) with no search at all: prefix_fn time / that time is the ceiling on any exact decoder's speedup.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

from genrec.decode import CodeTrie, FullCodeSpace, beam_search, prefix_allowed_tokens_fn
from genrec.sources import load_pretrained

LEVELS = [256, 256, 256]


def build_model(path: str | None, text_vocab: int) -> tuple[torch.nn.Module, list[torch.Tensor], int]:
    if path:
        model, _ = load_pretrained(path)  # a folder, a hub name, a GGUF file or an alias such as smollm2
        model.eval()
        vocab = model.get_input_embeddings().weight.shape[0]
    else:
        torch.manual_seed(0)
        vocab = text_vocab + sum(LEVELS)
        config = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                             num_attention_heads=4, num_key_value_heads=4, pad_token_id=0, eos_token_id=1)
        model = LlamaForCausalLM(config).eval()
    start = vocab - sum(LEVELS)  # code tokens are the last rows of the vocabulary
    token_ids = [torch.arange(start + sum(LEVELS[:i]), start + sum(LEVELS[: i + 1])) for i in range(len(LEVELS))]
    return model, token_ids, 1


def random_codes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flat = rng.choice(int(np.prod(LEVELS)), size=n, replace=False)
    return np.stack(np.unravel_index(flat, LEVELS), axis=1)


@torch.no_grad()
def model_floor(model, prompts: torch.Tensor, beams: int, levels: int) -> None:
    """The forwards any exact beam search must run, and nothing else: the prompt once, then per level one
    step for all beams with full-vocabulary logits and their normaliser. A lower bound on our decoder."""
    batch, length = prompts.shape
    cache = DynamicCache()
    out = model(input_ids=prompts, cache=cache, use_cache=True, logits_to_keep=1)
    torch.logsumexp(out.logits.float(), dim=-1)
    for level in range(levels):
        tokens = prompts[:, :beams]
        out = model(input_ids=tokens, position_ids=torch.full(tokens.shape, length + level), cache=cache,
                    use_cache=True)
        torch.logsumexp(out.logits.float(), dim=-1)


def timed(repeat: int, fn, *args, **kwargs) -> tuple[float, object]:
    """Median seconds of `repeat` calls after one warm-up call, and the last result."""
    fn(*args, **kwargs)
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default="20000,1000000")
    parser.add_argument("--beams", default="20,50")
    parser.add_argument("--batch", default="1,32")
    parser.add_argument("--prompt-length", type=int, default=100)
    parser.add_argument("--text-vocab", type=int, default=32000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--model", default=None)
    parser.add_argument("--json", default="bench/results/decode.json")
    args = parser.parse_args()
    torch.set_num_threads(2)

    model, token_ids, eos = build_model(args.model, args.text_vocab)
    free = FullCodeSpace(LEVELS, token_ids, eos)
    rows, tries = [], {}
    for n_items in (int(v) for v in args.items.split(",")):
        codes = random_codes(n_items)
        start = time.perf_counter()
        trie = CodeTrie(codes, LEVELS, token_ids, eos)
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        prefix_fn = prefix_allowed_tokens_fn(trie, args.prompt_length)
        dict_seconds = time.perf_counter() - start
        tries[n_items] = {"build_seconds": round(build_seconds, 2), "table_mb": round(trie.nbytes() / 2**20, 1),
                          "python_dict_build_seconds": round(dict_seconds, 2)}
        print(f"{n_items:,} items: trie tables built in {build_seconds:.2f} s, {trie.nbytes() / 2**20:.1f} MB "
              f"(the Python dict trie for the baseline: {dict_seconds:.1f} s)")
        code_of = {tuple(token_ids[lvl][c].item() for lvl, c in enumerate(row)): i for i, row in enumerate(codes)}
        for batch in (int(v) for v in args.batch.split(",")):
            seed = torch.Generator().manual_seed(1)
            prompts = torch.randint(2, args.text_vocab, (batch, args.prompt_length), generator=seed)
            for beams in (int(v) for v in args.beams.split(",")):
                ours_t, (items, _) = timed(args.repeat, beam_search, model, prompts, trie, beams)
                free_t, _ = timed(args.repeat, beam_search, model, prompts, free, beams)
                floor_t, _ = timed(args.repeat, model_floor, model, prompts, beams, len(LEVELS))
                hf_t, out = timed(1, model.generate, prompts, num_beams=beams, num_return_sequences=beams,
                                  prefix_allowed_tokens_fn=prefix_fn, length_penalty=0.0,
                                  max_new_tokens=len(LEVELS) + 1, do_sample=False, early_stopping=True,
                                  pad_token_id=0, eos_token_id=eos)
                generated = out[:, args.prompt_length : args.prompt_length + len(LEVELS)].reshape(batch, beams, -1)
                theirs = [[code_of.get(tuple(seq.tolist()), -1) for seq in user] for user in generated]
                row = {"items": n_items, "batch": batch, "beams": beams, "ours_s": round(ours_t, 4),
                       "unconstrained_s": round(free_t, 4), "prefix_fn_s": round(hf_t, 4),
                       "speedup_vs_prefix_fn": round(hf_t / ours_t, 2),
                       "overhead_vs_unconstrained": round(ours_t / free_t, 3),
                       "model_floor_s": round(floor_t, 4), "ceiling_speedup": round(hf_t / floor_t, 2),
                       "identical": items.tolist() == theirs}
                rows.append(row)
                print(json.dumps(row))
    summary = {"speedup_vs_prefix_fn": min(r["speedup_vs_prefix_fn"] for r in rows),
               "overhead_vs_unconstrained": max(r["overhead_vs_unconstrained"] for r in rows),
               "identical": all(r["identical"] for r in rows),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               "tries": tries, "runs": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(summary, indent=2))

    print("\n| items | batch | beams | ours (s) | no constraint (s) | model forwards alone (s) "
          "| prefix_allowed_tokens_fn (s) | speedup | ceiling | overhead | identical |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['items']:,} | {r['batch']} | {r['beams']} | {r['ours_s']:.3f} | {r['unconstrained_s']:.3f} | "
              f"{r['model_floor_s']:.3f} | {r['prefix_fn_s']:.3f} | {r['speedup_vs_prefix_fn']:.1f}x | "
              f"{r['ceiling_speedup']:.1f}x | {r['overhead_vs_unconstrained']:.2f}x | "
              f"{r['identical']} |")


if __name__ == "__main__":
    main()
