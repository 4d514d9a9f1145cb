"""Item codebook on a real dataset: collisions, code usage, reconstruction, time, determinism.

    python bench/codebook.py [--dataset yelp] [--quantizers rqvae,rqkmeans] [--json bench/results/codebook_yelp.json]

Embeddings (all-MiniLM-L6-v2) are computed once and cached; the quantizer time excludes them. Each
quantizer is built twice with the same seed to check that the codes are byte-identical.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from genrec.data import load_format
from semid.codebook import CodebookConfig, build_codebook
from semid.text import EncoderConfig, TextTemplate, embed_texts

FORMATS = {"beauty": "p5", "sports": "p5", "yelp": "p5", "games": "lcrec", "ml-100k": "movielens"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="yelp")
    parser.add_argument("--datasets", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    parser.add_argument("--quantizers", default="rqvae,rqkmeans")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "genrec" / "embeddings"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    dataset = load_format(FORMATS[args.dataset], Path(args.datasets) / args.dataset)
    start = time.perf_counter()
    embeddings = embed_texts(TextTemplate().texts(dataset), EncoderConfig(), args.cache)
    results = {"dataset": args.dataset, "items": dataset.num_items,
               "embedding_seconds_or_cached": round(time.perf_counter() - start, 1), "quantizers": {}}
    for kind in args.quantizers.split(","):
        runs = []
        for _ in range(2):
            tokenizer, stats = build_codebook(dataset, CodebookConfig(quantizer=kind), embeddings=embeddings)
            stats["codes_sha256"] = hashlib.sha256(tokenizer.codes.tobytes()).hexdigest()
            runs.append(stats)
        stats = runs[0]
        stats["identical_codes_twice"] = runs[0]["codes_sha256"] == runs[1]["codes_sha256"]
        results["quantizers"][kind] = stats
        print(f"{kind}: {json.dumps({k: v for k, v in stats.items() if k != 'codes_sha256'})}")
    out = Path(args.json or f"bench/results/codebook_{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print("\n| quantizer | items | collisions before | after uniform mapping | after uniqueness step | level usage "
          "| perplexity | recon MSE | epochs | seconds | identical twice |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, s in results["quantizers"].items():
        print(f"| {kind} | {s['items']:,} | {s['collision_rate_before']:.2%} | "
              f"{s['collision_rate_after_uniform_mapping']:.2%} | {s['collision_rate']:.2%} | "
              f"{' / '.join(f'{u:.0%}' for u in s['level_usage'])} | "
              f"{' / '.join(f'{p:.0f}' for p in s['level_perplexity'])} | {s['recon_mse']:.3f} | {s['epochs']} | "
              f"{s['seconds']:.0f} | {s['identical_codes_twice']} |")


if __name__ == "__main__":
    main()
