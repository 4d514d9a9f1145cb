"""MovieLens from GroupLens: ml-100k (`u.data`, `u.item`, `u.user`), ml-1m (`*.dat`, `::`), ml-latest(-small) csv.

Every rating is an interaction (the usual implicit-feedback reading), and its rating is kept beside it (the
CTR baselines label a row by it); titles and genres are the item text; user attributes (age, gender,
occupation, zip code) join the users table where the variant has them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from ...errors import DataError
from ..dataset import RecDataset
from ..io import iter_lines, read_text, require_file
from ..text import make_item

USER_FIELDS = ["user_id", "age", "gender", "occupation", "zip_code"]


def _rows(path: Path, sep: str, width: int, encoding: str) -> list[list[str]]:
    rows = []
    for number, line in iter_lines(path, encoding):
        parts = line.split(sep)
        if len(parts) < width:
            raise DataError(f"{path}: line {number} has {len(parts)} fields separated by {sep!r}, expected {width}")
        rows.append(parts)
    return rows


def _interactions(rows: list[list[str]], path: Path) -> pd.DataFrame:
    frame = pd.DataFrame([r[:4] for r in rows], columns=["user_id", "item_id", "rating", "timestamp"])
    stamps = pd.to_numeric(frame["timestamp"], errors="coerce")
    if stamps.isna().any():
        row = int(stamps.isna().to_numpy().argmax())
        raise DataError(f"{path}: line {row + 1}: timestamp {frame['timestamp'][row]!r} is not a number")
    frame["timestamp"] = stamps.astype("int64")
    ratings = pd.to_numeric(frame["rating"], errors="coerce")
    if ratings.isna().any():
        row = int(ratings.isna().to_numpy().argmax())
        raise DataError(f"{path}: line {row + 1}: rating {frame['rating'][row]!r} is not a number")
    frame["rating"] = ratings.astype("float32")
    return frame


def _unique(items: list[dict], path: Path) -> list[dict]:
    seen = {}
    for row, item in enumerate(items, start=1):
        if item["item_id"] in seen:
            raise DataError(f"{path}: movie id {item['item_id']!r} on line {row} repeats line {seen[item['item_id']]}")
        seen[item["item_id"]] = row
    return items


def _load_100k(folder: Path) -> tuple[list[dict], pd.DataFrame, pd.DataFrame | None]:
    data, item_file = require_file(folder / "u.data"), require_file(folder / "u.item")
    genre_file = folder / "u.genre"
    genres = ([line.split("|")[0] for _, line in iter_lines(genre_file, "latin-1")] if genre_file.is_file()
              else [f"genre_{i}" for i in range(19)])
    items = []
    for parts in _rows(item_file, "|", 5 + len(genres), "latin-1"):
        flags = parts[5 : 5 + len(genres)]
        items.append(make_item(parts[0], title=parts[1], categories=[g for g, f in zip(genres, flags) if f == "1"]))
    users = None
    if (folder / "u.user").is_file():
        rows = _rows(folder / "u.user", "|", 5, "latin-1")
        users = pd.DataFrame([r[:5] for r in rows], columns=USER_FIELDS)
    return _unique(items, item_file), _interactions(_rows(data, "\t", 4, "latin-1"), data), users


def _load_1m(folder: Path) -> tuple[list[dict], pd.DataFrame, pd.DataFrame | None]:
    ratings, movies = require_file(folder / "ratings.dat"), require_file(folder / "movies.dat")
    items = [make_item(p[0], title=p[1], categories=p[2].split("|")) for p in _rows(movies, "::", 3, "latin-1")]
    users = None
    if (folder / "users.dat").is_file():
        rows = _rows(folder / "users.dat", "::", 5, "latin-1")
        users = pd.DataFrame([[r[0], r[2], r[1], r[3], r[4]] for r in rows], columns=USER_FIELDS)
    return _unique(items, movies), _interactions(_rows(ratings, "::", 4, "latin-1"), ratings), users


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(read_text(path)), dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(frame.columns)})")
    return frame


def _load_latest(folder: Path) -> tuple[list[dict], pd.DataFrame, None]:
    ratings_file, movies_file = require_file(folder / "ratings.csv"), require_file(folder / "movies.csv")
    movies = _read_csv(movies_file, ["movieId", "title", "genres"])
    items = [make_item(m, title=t, categories=[] if g == "(no genres listed)" else g.split("|"))
             for m, t, g in zip(movies["movieId"], movies["title"], movies["genres"])]
    ratings = _read_csv(ratings_file, ["userId", "movieId", "rating", "timestamp"])
    rows = ratings[["userId", "movieId", "rating", "timestamp"]].to_numpy().tolist()
    return _unique(items, movies_file), _interactions(rows, ratings_file), None


def load_movielens(path: str | Path, item_text: str | Path | None = None, name: str | None = None) -> RecDataset:
    folder = Path(path)
    if (folder / "u.data").exists():
        variant, loader = "ml-100k", _load_100k
    elif (folder / "ratings.dat").exists():
        variant, loader = "ml-1m", _load_1m
    elif (folder / "ratings.csv").exists():
        variant, loader = "ml-latest", _load_latest
    else:
        raise DataError(f"{folder}: not a MovieLens folder (expected u.data, ratings.dat or ratings.csv)")
    items, interactions, users = loader(folder)
    dataset = RecDataset.from_records(items, interactions, name or folder.name,
                                      {"format": "movielens", "variant": variant, "source": str(folder)})
    if users is not None:
        attributes = users.drop_duplicates("user_id").set_index("user_id")
        dataset.users = dataset.users.join(attributes, on="user_id")
    return dataset
