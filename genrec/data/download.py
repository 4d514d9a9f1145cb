"""Download helpers for public sources, for users with internet. Never called by tests or the demo."""

from __future__ import annotations

import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

MOVIELENS = {
    "ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    "ml-1m": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
    "ml-latest-small": "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
    "ml-latest": "https://files.grouplens.org/datasets/movielens/ml-latest.zip",
}
AMAZON2023_REPO = "McAuley-Lab/Amazon-Reviews-2023"


def movielens_url(variant: str) -> str:
    if variant not in MOVIELENS:
        raise ValueError(f"unknown MovieLens variant {variant!r}; choose one of {', '.join(MOVIELENS)}")
    return MOVIELENS[variant]


def download_movielens(variant: str, out_dir: str | Path) -> Path:
    """Fetch and unzip a GroupLens MovieLens archive; returns the folder to pass to `--format movielens`."""
    url, out_dir = movielens_url(variant), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "data.zip"
        with urllib.request.urlopen(url) as response, open(archive, "wb") as sink:
            total = int(response.headers.get("Content-Length", 0)) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=variant) as bar:
                while chunk := response.read(1 << 20):
                    sink.write(chunk)
                    bar.update(len(chunk))
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(out_dir)
    return out_dir / variant


def amazon2023_files(category: str) -> tuple[str, str]:
    """Paths of one category's reviews and metadata inside the hub dataset repository."""
    return f"raw/review_categories/{category}.jsonl", f"raw/meta_categories/meta_{category}.jsonl"


def download_amazon2023(category: str, out_dir: str | Path) -> Path:
    """Fetch one Amazon Reviews 2023 category (reviews + meta jsonl) from the hub through `datasets`."""
    import datasets

    out_dir = Path(out_dir) / category
    out_dir.mkdir(parents=True, exist_ok=True)
    for remote in amazon2023_files(category):
        table = datasets.load_dataset("json", data_files=f"hf://datasets/{AMAZON2023_REPO}/{remote}", split="train")
        table.to_json(str(out_dir / Path(remote).name), lines=True)
    return out_dir
