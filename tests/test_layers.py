"""The package's layers (issue 18): one subpackage per layer, imports only downward, and a planning
layer that loads neither torch nor matplotlib.

    core -> models, data -> training -> inference -> evaluation -> figures -> planning -> commands

(``models`` and ``data`` side by side: neither imports the other). Only ``__init__`` and ``cli``
sit at the top of the package. Every import counts, the ones inside functions too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "msdnet"

# layer -> rank; a module may import its own subpackage and lower ranks only
LAYERS = {"core": 0, "models": 1, "data": 1, "training": 2, "inference": 3, "evaluation": 4,
          "figures": 5, "planning": 6, "commands": 7}
TOP_LEVEL = {"__init__.py", "cli.py"}
# (importer layer, imported module prefix): imports the ranks allow but the design does not
FORBIDDEN = [
    ("figures", "msdnet.data"),                 # figures draw the arrays they are given
    ("figures", "msdnet.training"),
    ("figures", "msdnet.models"),
    ("inference", "msdnet.training.train"),     # inference reads checkpoints, never runs the trainer
    ("planning", "msdnet.commands"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path, top_only: bool = False) -> set[str]:
    """The msdnet modules (or packages) ``name`` imports; ``from pkg import sub`` counts as
    ``pkg.sub`` when ``sub`` is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    nodes = tree.body if top_only else ast.walk(tree)
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "msdnet"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "msdnet":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            out |= set(subs) if subs and len(subs) == len(node.names) else {target, *subs}
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_module_at_the_top_but_init_and_cli():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert set(top) == TOP_LEVEL, f"modules at the top of msdnet/: {sorted(set(top) - TOP_LEVEL)}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == set(LAYERS)


def test_every_import_goes_downward():
    bad = []
    for name, path in MODULES.items():
        layer = _layer(name)
        if layer is None:                       # msdnet/__init__.py (lazy load_model) and cli.py
            continue
        for target in _imports(name, path):
            other = _layer(target)
            if other is None:                   # msdnet itself: __version__
                assert target == "msdnet", f"{name} imports {target}"
                continue
            if other != layer and LAYERS[other] >= LAYERS[layer]:
                bad.append(f"{name} ({layer}) imports {target} ({other})")
            for who, prefix in FORBIDDEN:
                if layer == who and (target == prefix or target.startswith(prefix + ".")):
                    bad.append(f"{name} ({layer}) imports {target}")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(set(bad)))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_subpackages():
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        layer = _layer(name)
        if layer is None:
            continue
        graph.setdefault(layer, set()).update(
            other for t in _imports(name, path) if (other := _layer(t)) not in (None, layer))
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_import_cycle_between_modules():
    """Module-level imports (what runs when a module is loaded) form no cycle; the trainer and
    the card chooser (training.train, training.gpu_slots) once imported each other."""
    graph = {name: {t for t in _imports(name, path, top_only=True) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    # a package's __init__ runs before its submodules: importing msdnet.x.y imports msdnet.x
    for name in MODULES:
        parent = name.rsplit(".", 1)[0]
        if "." in name and parent in MODULES and parent != "msdnet":
            graph[name].discard(parent)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert "msdnet.training.train" not in _imports("msdnet.training.gpu_slots",
                                                   MODULES["msdnet.training.gpu_slots"])


def test_the_workflow_and_the_notebooks_import_no_command():
    """The Snakefile's rules and the notebooks use the library (planning, evaluation), never a
    CLI command's module."""
    import re

    files = sorted((REPO / "workflow").rglob("*.smk")) + [REPO / "workflow" / "Snakefile", REPO / "Snakefile"]
    files += sorted((REPO / "notebooks").glob("*.py"))
    found = [(f.relative_to(REPO).as_posix(), m) for f in files if f.is_file()
             for m in re.findall(r"^\s*(?:from|import)\s+(msdnet[\w.]*)", f.read_text(encoding="utf-8"), re.M)]
    assert found, "no msdnet import found in the workflow or the notebooks"
    assert not [f"{f}: {m}" for f, m in found if m.startswith("msdnet.commands")]
    smk = {m for f, m in found if not f.startswith("notebooks/")}
    assert all(_layer(m) in ("core", "figures", "planning") for m in smk), smk


# -- the planning layer is torch-free ---------------------------------------------------------------

def _run_fresh(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAVY = ("torch", "matplotlib")
REPORT = ("import json, sys\n"
          f"print(json.dumps({{'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules), 'n': N}}))\n")


@pytest.mark.parametrize("preset", ["config/paper-cifar100.yaml", "config/tiny.yaml"])
def test_planning_a_preset_imports_neither_torch_nor_matplotlib(preset):
    """What workflow/rules/common.smk, gpu.smk and notebooks.smk do to plan a preset: validate it
    (plan), every run, prediction, table, figure and key file, the notebook rule's plan."""
    code = f"""
from msdnet.core.config import load_yaml
from msdnet.figures.registry import FIGURES, TABLES
from msdnet.planning.notebooks import workflow_plan
from msdnet.planning.workflow import SPLITS, gpu_resources, gpu_slot_limit, plan

preset = plan(load_yaml({preset!r}), {preset!r})
notebooks = workflow_plan(preset, "data/paper/reference_points.csv")
paths = [str(preset.model_file(m, s)) for m, s in preset.runs_needed()]
paths += [str(preset.predictions_dir(n, s)) for n, s in preset.predictions_needed()]
paths += [str(preset.data_summary(m)) for m in preset.models_needed()] + list(preset.data_plans())
paths += [str(preset.table_key(t)) for t in preset.tables()]
paths += [str(preset.figure_key(f)) for f in preset.figures]
paths += [str(preset.notebook_key(notebooks["explorer_key"]))]
paths += [str(preset.image_data(f)) for f in preset.figures]
specs = [preset.table_spec(t) for t in preset.tables()] + [preset.figure_spec(f) for f in preset.figures]
gpu_resources(preset.cfg), gpu_slot_limit(preset.cfg, 1)
N = len(paths)
""" + REPORT
    got = _run_fresh(code)
    assert got["n"] > 10 and got["heavy"] == []


def test_msdnet_help_imports_neither_torch_nor_matplotlib():
    code = """
import contextlib, io
from msdnet.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(["--help"])
    except SystemExit:
        pass
N = len(out.getvalue().splitlines())
""" + REPORT
    got = _run_fresh(code)
    assert got["n"] > 10 and got["heavy"] == []


def test_validating_a_model_config_imports_no_torch():
    code = """
from msdnet.models import families, parse
from msdnet.core.config import load_yaml
from pathlib import Path
N = 0
for path in sorted(Path("config/models").rglob("*.yaml")):
    parse(load_yaml(path), str(path))
    N += 1
assert len(families()) == 6
""" + REPORT
    got = _run_fresh(code)
    assert got["n"] > 10 and got["heavy"] == []
