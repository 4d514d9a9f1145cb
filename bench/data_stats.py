"""Statistics of the real datasets, as `genrec data prepare` reads them (the README table).

    python bench/data_stats.py [--datasets $GENREC_DATASETS] [--json bench/results/data_stats.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from genrec.data import dataset_stats, load_format

DATASETS = {"beauty": "p5", "sports": "p5", "games": "lcrec", "instruments": "lcrec", "yelp": "p5",
            "ml-100k": "movielens"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=os.environ.get("GENREC_DATASETS", "datasets"))
    parser.add_argument("--json", default="bench/results/data_stats.json")
    args = parser.parse_args()

    rows = {}
    for folder, fmt in DATASETS.items():
        start = time.perf_counter()
        stats = dataset_stats(load_format(fmt, Path(args.datasets) / folder))
        stats["load_seconds"] = round(time.perf_counter() - start, 2)
        rows[folder] = {"format": fmt, **stats}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))

    print("| dataset | format | users | items | interactions | density | seq. length p50 / mean / max "
          "| repeated pairs | items without text | load (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for folder, s in rows.items():
        seq = s["seq_len"]
        print(f"| {folder} | {s['format']} | {s['users']:,} | {s['items']:,} | {s['interactions']:,} | "
              f"{s['density']:.5f} | {seq['p50']:g} / {seq['mean']:.1f} / {seq['max']} | {s['repeated_pairs']:,} | "
              f"{s['items_without_text']:,} | {s['load_seconds']} |")


if __name__ == "__main__":
    main()
