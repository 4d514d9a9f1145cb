"""Reading raw files (encodings, gzip, JSON lines strict or Python-literal) with errors that say where."""

from __future__ import annotations

import ast
import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError


def require_file(path: str | Path, what: str = "file") -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")
    return path


def find_one(folder: Path, patterns: list[str], what: str, required: bool = True) -> Path | None:
    """The single file in `folder` matching the first pattern that matches anything."""
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if len(hits) > 1:
            names = ", ".join(p.name for p in hits)
            raise DataError(f"{folder}: several {what} files match {pattern!r} ({names}); pass the file itself")
        if hits:
            return hits[0]
    if required:
        raise DataError(f"{folder}: no {what} file (looked for {', '.join(patterns)})")
    return None


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Whole file as text; gzip by extension; a bad byte raises DataError with its offset."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} (byte {err.start}) is not valid {encoding}; "
            "re-encode the file or pass the right encoding"
        ) from None


def iter_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for every non-blank line."""
    for number, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if line.strip():
            yield number, line


def iter_records(path: Path) -> Iterator[tuple[int, dict]]:
    """JSON-lines records; falls back to Python literals (the Amazon 2014 metadata is written that way)."""
    for number, line in iter_lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            try:
                record = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                raise DataError(f"{path}: line {number} is neither JSON nor a Python literal: {line[:80]!r}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number} is a {type(record).__name__}, expected an object")
        yield number, record


def load_json(path: Path):
    """JSON whose objects may not repeat a key (the last one would win without a word)."""

    def unique(pairs: list) -> dict:
        seen: dict = {}
        for key, value in pairs:
            if key in seen:
                raise DataError(f"{path}: key {key!r} appears twice; fix the file (which entry is meant is unknown)")
            seen[key] = value
        return seen

    try:
        return json.loads(read_text(path), object_pairs_hook=unique)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None


def timestamp(value, path: Path, number: int) -> int:
    """A time field as an integer, or a DataError naming the line: null, NaN and text are refused."""
    try:
        number_value = float(value)
    except (TypeError, ValueError):
        number_value = float("nan")
    if not math.isfinite(number_value):
        raise DataError(f"{path}: line {number}: timestamp {value!r} is not a number")
    return int(number_value)


def field(record: dict, key: str, path: Path, number: int):
    """record[key], or a DataError naming the file, line and missing field."""
    if key not in record:
        raise DataError(f"{path}: line {number} has no field {key!r} (fields: {', '.join(sorted(record))})")
    return record[key]
