"""The layer order (docs/architecture.md) and the declared dependencies, checked on every import statement,
function-level imports included."""

import ast
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("genrec", "semid", "tasks", "baselines")
# lowest first; a module may import its own layer or lower ones only
LAYERS = [
    ("genrec", "genrec.errors", "genrec.atomic", "genrec.config", "genrec.sources"),
    ("genrec.data",),
    ("semid",),
    ("tasks",),
    ("genrec.model", "genrec.decode", "genrec.parallel", "genrec.card"),
    ("genrec.evaluate", "genrec.fusion"),
    ("genrec.finetune", "genrec.train_parallel", "genrec.progress", "baselines"),
    ("genrec.pipeline", "genrec.serve", "genrec.commands", "genrec.cli", "genrec.__main__"),
]


def layer(module: str) -> int:
    """The layer of `module`: its longest listed prefix."""
    best, level = -1, None
    for number, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, level = len(name), number
    assert level is not None, f"{module} is in no layer; add it to LAYERS"
    return level


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path, path.name == "__init__.py"


def imports(name: str, path: Path, is_package: bool):
    """(imported module, line) for every import in the file, relative ones resolved."""
    base = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module
            yield target, node.lineno
            for alias in node.names:  # `from . import templates` imports a submodule
                yield f"{target}.{alias.name}", node.lineno


def test_imports_point_down_the_layers_only():
    wrong = []
    for name, path, is_package in modules():
        for target, line in imports(name, path, is_package):
            if target.split(".")[0] in PACKAGES and layer(target) > layer(name):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {layer(target)} > "
                             f"{layer(name)})")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_catches_an_upward_import(tmp_path):
    bad = tmp_path / "codebook.py"
    bad.write_text("def f():\n    from genrec.model import GenRecModel\n")
    found = [t for t, _ in imports("semid.codebook", bad, False) if layer(t) > layer("semid.codebook")]
    assert found == ["genrec.model", "genrec.model.GenRecModel"]


def test_data_error_imports_without_pandas_or_datasets():
    code = ("import sys, genrec.errors, genrec.config, genrec.atomic; "
            "print(sorted({'pandas', 'datasets', 'torch'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_third_party_import_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {d.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
                for d in project["dependencies"]}
    distributions = packages_distributions()
    missing = {}
    for name, path, is_package in modules():
        for target, line in imports(name, path, is_package):
            top = target.split(".")[0]
            if top in PACKAGES or top in sys.stdlib_module_names or top == "__future__":
                continue
            names = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
            if not names & {d.replace("_", "-") for d in declared}:
                missing.setdefault(top, f"{path.relative_to(ROOT)}:{line}")
    assert not missing, f"imported but not in pyproject.toml dependencies: {missing}"
