"""Dataclass configs from YAML with `key=value` overrides (dotted keys reach nested sections)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from .data import DataError


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """`a.b=3` sets raw["a"]["b"] = 3; values are parsed as YAML (numbers, booleans, lists, null)."""
    raw = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise DataError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    return raw


def build(cls, raw: dict, where: str = "config"):
    """Construct dataclass `cls` from a dict, naming unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__} "
                        f"(known: {', '.join(sorted(names))})")
    try:
        return cls(**raw)
    except (TypeError, ValueError) as err:
        raise DataError(f"{where}: {err}") from None


def load_config(cls, path: str | Path | None, overrides: list[str] | None = None) -> Any:
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"config file not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise DataError(f"{path}: not valid YAML ({err})") from None
    return build(cls, apply_overrides(raw, overrides or []), str(path or "command line"))
