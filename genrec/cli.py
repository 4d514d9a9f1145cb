"""`genrec` console script (also `python -m genrec`): one subcommand per step, flags generated from each
command's config dataclass (see genrec/commands). Every command also takes `--config FILE.yaml` and
`key=value` overrides.

    genrec data prepare --format p5 --path $GENREC_DATASETS/beauty --out runs/beauty/data
    genrec codebook build --data runs/beauty/data --out runs/beauty/semid
    genrec tasks build --data runs/beauty/data --semid runs/beauty/semid --out runs/beauty/sft
    genrec finetune --config recipes/finetune/synthetic-scratch.yaml [key=value ...]
    genrec recommend --model runs/quickstart/model --history ID,ID -k 10
    genrec evaluate --model runs/quickstart/model --data runs/quickstart/data
    genrec run recipes/quickstart.yaml [key=value ...]
    genrec demo
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .commands import COMMANDS, Command
from .errors import DataError


def _selected(argv: list[str]) -> Command | None:
    """The command the words of `argv` name (options before them skipped), if any."""
    words = [a for a in argv if not a.startswith("-")]
    for command in COMMANDS:
        if tuple(words[: len(command.words)]) == command.words:
            return command
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported to build its flags (all of them when `argv` is
    None, as the tests that check every command's flags do)."""
    chosen = _selected(argv) if argv is not None else None
    parser = argparse.ArgumentParser(prog="genrec", description="Generative recommendation with semantic IDs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every library message and progress bar")
    steps = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for command in COMMANDS:
        where = steps
        if len(command.words) == 2:
            group = command.words[0]
            if group not in groups:
                groups[group] = steps.add_parser(group, help=f"{group} actions").add_subparsers(
                    dest=f"{group}_action", required=True, metavar="ACTION")
            where = groups[group]
        sub = where.add_parser(command.words[-1], help=command.help, description=command.help)
        if argv is None or command == chosen:
            _add_command(sub, command)
    return parser


def _add_command(sub: argparse.ArgumentParser, command: Command) -> None:
    from .config import add_flags

    module = importlib.import_module(f"genrec.commands.{command.module}")
    if command.recipe:
        sub.add_argument("recipe", metavar="RECIPE.yaml", help="the recipe (flags and key=value override it)")
    add_flags(sub, getattr(module, command.config), command.required, command.positional)
    default = getattr(module, command.default_recipe) if command.default_recipe else None
    sub.set_defaults(chosen=command, function=getattr(module, command.function), default_recipe=default)


class _PlainFormatter(logging.Formatter):
    """genrec's own progress lines as they are; everything else marked with its level and source."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno == logging.INFO and record.name.startswith("genrec"):
            return text
        return f"{record.levelname.lower()} ({record.name}): {text}"


def quiet(verbose: bool) -> None:
    """genrec's own messages and one progress bar per long stage; libraries' warnings and preprocessing bars
    only with -v. Set before the libraries are imported, where they read these switches."""
    handler = logging.StreamHandler()
    handler.setFormatter(_PlainFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    logging.getLogger("genrec").setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        return
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' weight loading and writing bars
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|transformers|trl|peft|accelerate)\b")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet("-v" in argv or "--verbose" in argv)
    settings = [a for a in argv if "=" in a and not a.startswith("-")]  # key=value, anywhere among the flags
    argv = [a for a in argv if a not in settings]
    try:
        args = build_parser(argv).parse_args(argv)
        from .config import config_from_args

        if getattr(args, "recipe", None):
            if args.config:
                raise DataError(f"genrec run: give the recipe {args.recipe} or --config {args.config}, not both")
            args.config = args.recipe
        args.config = args.config or args.default_recipe
        cfg = config_from_args(args, " ".join(args.chosen.words), settings)
        return args.function(cfg)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
