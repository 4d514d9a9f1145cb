"""One config system for every command: typed dataclasses, from YAML, `--flags` and `key=value` overrides.

A setting is written once, as a dataclass field with its default and a trailing `# comment` that is its
help text. `build` turns a plain dict (YAML, flags, overrides) into the dataclass, converting and checking
every value against the field's type (nested dataclasses, optionals, tuples, `Literal` choices), so an unknown
key or a wrong type fails before any work starts, naming the key and what it accepts. `${VAR}` and
`${VAR:-default}` in string values read the environment (recipes reach datasets through `GENREC_DATASETS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import io
import os
import re
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import DataError

_ENV = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


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


def expand_env(value: str, where: str) -> str:
    """`${VAR}` / `${VAR:-default}` from the environment; an unset variable without a default is an error."""

    def lookup(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise DataError(f"{where}: {match.group(0)} is not set; export {name}=... (or write a path)")

    return _ENV.sub(lookup, value)


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """Each field's trailing `# comment` in the class source: the help text of its flag."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        last_name, last_line = None, -1
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.start[1] == 4 and tok.start[0] != last_line:
                last_name, last_line = tok.string, tok.start[0]
            elif tok.type == tokenize.COMMENT and tok.start[0] == last_line and last_name:
                docs[last_name] = tok.string.lstrip("# ").strip()
    return docs


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_describe(args[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a {tp.__name__} section"
    return {int: "an integer", float: "a number", bool: "true or false", str: "text", dict: "a mapping"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def coerce(value, tp, where: str):
    """`value` as type `tp`, or a DataError naming `where` and what it accepts."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    fail = DataError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return coerce(value, arg, where)
                except DataError:
                    continue
        raise fail
    if origin is Literal:
        if value in args:
            return value
        raise fail
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else build(tp, value, where)
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise fail
        items = [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is dict or origin is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        raise fail
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise fail
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise fail
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise fail from None
        raise fail
    if tp is str:
        if isinstance(value, str):
            return expand_env(value, where)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise fail
    return value


def build(cls, raw, where: str = ""):
    """Construct dataclass `cls` from a dict, converting each value to its field's type; unknown keys, wrong
    types and the class's own checks fail with a DataError that names the key (`where` is the dotted path of
    the section, empty at the top)."""
    if isinstance(raw, cls):
        return raw
    if raw is None:
        raw = {}
    prefix = f"{where}: " if where else ""
    if not isinstance(raw, dict):
        raise DataError(f"{prefix}expected a mapping of {cls.__name__} settings, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise DataError(f"{prefix}unknown key(s) {', '.join(unknown)} for {cls.__name__} "
                        f"(known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {key: coerce(value, hints[key], f"{where}.{key}" if where else key) for key, value in raw.items()}
    try:
        return cls(**values)
    except DataError:
        raise
    except (TypeError, ValueError) as err:
        raise DataError(f"{prefix}{err}") from None


def section(cfg, cls):
    """The `cls` part of `cfg`, an instance of a subclass of dataclass `cls` (a command's config that adds its
    folders to a library config)."""
    return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls) if f.init})


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: a config file is a mapping of settings, not {type(raw).__name__}")
    return raw


def load_config(cls, path: str | Path | None = None, overrides: list[str] | None = None,
                flags: dict | None = None) -> Any:
    """`cls` from a YAML file, then `--flag` values, then `key=value` overrides (later ones win)."""
    raw = read_yaml(path) if path is not None else {}
    raw.update(flags or {})
    raw = apply_overrides(raw, overrides or [])
    try:
        return build(cls, raw)
    except DataError as err:
        raise DataError(f"{path}: {err}" if path else str(err)) from None


# ---- the command line, generated from the dataclasses ------------------------------------------------------

def _flag_type(tp):
    """The scalar type a flag can carry, or None for sections that only `key=value` and YAML reach."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _flag_type(inner[0]) if len(inner) == 1 else (str if str in inner else None)
    if origin is Literal or tp in (str, int, float, bool):
        return tp
    if origin in (tuple, list) and args and args[0] in (str, int, float):
        return tp
    return None


def add_flags(parser: argparse.ArgumentParser, cls, required: tuple[str, ...] = (),
              positional: tuple[str, ...] = ()) -> None:
    """A `--flag` per scalar field of `cls` (help from its comment, default shown), positionals for
    `positional`, then `--config FILE` and `key=value` overrides for everything, nested sections included."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = _flag_type(hints[f.name])
        if tp is None or not f.init:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
        text = docs.get(f.name, "")
        if f.name in required or f.name in positional:
            text = f"{text} (required)" if text else "(required)"
        elif shown not in (None, ""):
            text = f"{text} (default: {shown})" if text else f"default: {shown}"
        text = text.replace("%", "%%")  # argparse formats help with %
        if f.name in positional:
            parser.add_argument(f.name, nargs="?", default=argparse.SUPPRESS, help=text)
            continue
        flag = ("-" if len(f.name) == 1 else "--") + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=text)
        elif typing.get_origin(tp) is Literal:  # checked by `build`, like every other value
            metavar = "{" + ",".join(map(str, typing.get_args(tp))) + "}"
            parser.add_argument(flag, dest=f.name, metavar=metavar, default=argparse.SUPPRESS, help=text)
        else:
            metavar = "A,B,..." if typing.get_origin(tp) in (tuple, list) else f.name.upper()
            parser.add_argument(flag, dest=f.name, metavar=metavar, default=argparse.SUPPRESS, help=text)
    parser.add_argument("--config", metavar="FILE.yaml", help="settings from a YAML file (flags and key=value win)")
    parser.usage = parser.format_usage().removeprefix("usage: ").rstrip() + " [key=value ...]"
    parser.epilog = ("key=value sets any setting, nested ones too (e.g. finetune.backbone.scratch.layers=2); "
                     "values are YAML (numbers, true/false, [lists], null)")
    parser.set_defaults(config_class=cls, required=required)


def config_from_args(args: argparse.Namespace, command: str, overrides: list[str]):
    """The command's typed config from parsed flags and `key=value` overrides; required settings checked."""
    cls = args.config_class
    names = {f.name for f in dataclasses.fields(cls)}
    flags = {k: v for k, v in vars(args).items() if k in names}
    cfg = load_config(cls, args.config, overrides, flags)
    missing = [name for name in args.required if getattr(cfg, name) in (None, "")]
    if missing:
        raise DataError(f"genrec {command}: missing " + ", ".join(f"--{m.replace('_', '-')}" for m in missing))
    return cfg
