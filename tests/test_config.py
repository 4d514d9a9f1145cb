"""The config system every command shares, and the commands the docs name."""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from genrec.cli import build_parser, main
from genrec.commands import COMMANDS
from genrec.config import build, field_docs, load_config
from genrec.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Inner:
    width: int = 4                 # how wide


@dataclass
class Outer:
    name: str = "x"                # what it is called
    rate: float = 0.1
    sizes: tuple[int, ...] = (1, 2)
    kind: Literal["a", "b"] = "a"
    limit: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_values_are_converted_to_their_types_and_named_when_wrong():
    cfg = build(Outer, {"rate": "1e-3", "sizes": "3,4", "limit": None, "inner": {"width": "7"}})
    assert (cfg.rate, cfg.sizes, cfg.limit, cfg.inner.width) == (0.001, (3, 4), None, 7)
    for raw, message in [({"rate": "fast"}, "rate: expected a number, got 'fast'"),
                         ({"sizes": [1, "x"]}, r"sizes\[1\]: expected an integer"),
                         ({"kind": "c"}, "kind: expected one of 'a', 'b'"),
                         ({"inner": {"width": 1.5}}, "inner.width: expected an integer, got 1.5"),
                         ({"inner": {"depth": 1}}, r"inner: unknown key\(s\) depth for Inner \(known: width\)"),
                         ({"limit": True}, "limit: expected an integer or null")]:
        with pytest.raises(DataError, match=message):
            build(Outer, raw)


def test_environment_variables_in_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("GENREC_TEST_ROOT", "/data")
    assert build(Outer, {"name": "${GENREC_TEST_ROOT}/beauty"}).name == "/data/beauty"
    assert build(Outer, {"name": "${GENREC_TEST_UNSET:-datasets}/beauty"}).name == "datasets/beauty"
    with pytest.raises(DataError, match=r"name: \$\{GENREC_TEST_UNSET\} is not set"):
        build(Outer, {"name": "${GENREC_TEST_UNSET}/beauty"})
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: from-file\nrate: 0.5\n")
    cfg = load_config(Outer, recipe, ["rate=0.25"], {"name": "from-flag"})
    assert (cfg.name, cfg.rate) == ("from-flag", 0.25)  # file < flags < key=value


def test_help_text_comes_from_the_field_comments():
    assert field_docs(Outer) == {"name": "what it is called"}
    assert field_docs(Inner) == {"width": "how wide"}


def test_every_command_builds_its_flags_from_its_dataclass():
    parser = build_parser()  # every command's flags
    for command in COMMANDS:
        sub = parser
        for word in command.words:
            sub = next(a for a in sub._actions if hasattr(a, "choices") and isinstance(a.choices, dict)).choices[word]
        flags = {o for a in sub._actions for o in a.option_strings}
        assert "--config" in flags, command.words
        for name in command.required:
            if name not in command.positional:
                assert "--" + name.replace("_", "-") in flags, (command.words, name)


def test_cli_errors_name_the_setting_and_exit_2(tmp_path, capsys):
    assert main(["codebook", "build", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--levels", "8,x"]) == 2
    assert "levels[1]: expected an integer, got 'x'" in capsys.readouterr().err
    assert main(["codebook", "build", "--out", str(tmp_path / "o")]) == 2
    assert "missing --data" in capsys.readouterr().err
    assert main(["tasks", "build", "--data", "d", "--semid", "s", "--out", "o", "--tasks", "seqrec,nope"]) == 2
    assert "unknown task(s) nope" in capsys.readouterr().err
    assert main(["evaluate", "--model", "m", "--data", "d", "--split", "tset"]) == 2
    assert "split: expected one of 'valid', 'test'" in capsys.readouterr().err
    assert main(["run", str(ROOT / "recipes" / "quickstart.yaml"), "finetune.max_steps=abc"]) == 2
    assert "finetune.max_steps: expected an integer, got 'abc'" in capsys.readouterr().err
    assert main(["baseline", "train", "--method", "sasrec", "--data", "d", "--out", "o", "model.hiden=3"]) == 2
    assert "model: unknown key(s) hiden" in capsys.readouterr().err


def _documented_commands():
    """Every `genrec ...` command line in README and docs/ code blocks, with its file."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks, inside = [], None
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                inside = [] if inside is None and line.strip() in ("```bash", "```sh") else None
                if inside is not None:
                    blocks.append(inside)
            elif inside is not None:
                inside.append(line)
        for block in blocks:
            for line in "\n".join(block).replace("\\\n", " ").splitlines():
                line = re.sub(r"\s#.*$", "", line).strip()
                line = re.sub(r"\[[^\]]*\]", "", line)  # optional parts
                if "genrec " not in line or line.startswith(("pip", "#", "from ", "import ", ">>>")):
                    continue
                tokens = shlex.split(line[line.index("genrec ") :])
                yield path.name, tokens[1:]


def test_every_documented_command_and_flag_exists():
    seen = 0
    for where, words in _documented_commands():
        args = [w for w in words if not ("=" in w and not w.startswith("-"))]
        parser = build_parser(args)
        try:
            _, unknown = parser.parse_known_args(args)
        except SystemExit as stop:  # --help exits with 0
            assert not stop.code, f"{where}: `genrec {' '.join(words)}` does not parse"
            continue
        assert not [u for u in unknown if u.startswith("-")], f"{where}: unknown flag(s) {unknown} in {words}"
        seen += 1
    assert seen >= 10
