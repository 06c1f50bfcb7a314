"""The library's layering, as the README states it, enforced by parsing the imports.

config -> data -> model -> metrics -> train -> zoo -> analysis (heads, scores, circuits, interventions,
phase, hopfield, fuzzy, text, bridge: numbers only) -> plots (a package by topic) -> widgets -> exercises.
A module imports only from its own layer or the layers below it; nothing below the figures draws.
"""
import ast
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "induction_lib"
LAYERS = [["config"], ["data"], ["model"], ["metrics"], ["train"], ["zoo"],
          ["heads", "scores", "circuits", "interventions", "phase", "hopfield", "fuzzy", "text", "bridge"],
          ["plots"], ["widgets"], ["exercises"]]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(("induction_lib",) + parts)] = path
    return out


def imported(name: str, path: Path) -> set[str]:
    """The induction_lib modules `name` imports (absolute and relative imports, resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}   # `from . import scores` imports a module
    return {m for m in found if m.startswith("induction_lib.") and m.split(".")[1] in RANK}


def layer(module: str) -> int:
    return RANK[module.split(".")[1]]


def test_every_module_has_a_layer():
    top = {name.split(".")[1] for name in modules() if name != "induction_lib"}
    assert top <= set(RANK), f"modules without a layer: {sorted(top - set(RANK))}"


@pytest.mark.parametrize("name", [n for n in modules() if n != "induction_lib"])
def test_nothing_imports_from_above_itself(name):
    path = modules()[name]
    above = sorted(m for m in imported(name, path) if layer(m) > layer(name))
    assert not above, f"{name} (layer {layer(name)}) imports from above itself: {above}"


@pytest.mark.parametrize("name", [n for n in modules() if n != "induction_lib" and layer(n) < RANK["plots"]])
def test_below_the_figures_nothing_draws(name):
    tree = ast.parse(modules()[name].read_text())
    imports = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imports |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(m.startswith("matplotlib") for m in imports), \
        f"{name} imports matplotlib: figures belong in induction_lib.plots"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    fake = tmp_path / "scores.py"
    fake.write_text("from .plots import OKABE_ITO\nfrom . import widgets, data\nimport induction_lib.zoo\n")
    found = imported("induction_lib.scores", fake)
    assert {"induction_lib.plots", "induction_lib.widgets", "induction_lib.data", "induction_lib.zoo"} <= found
    assert sorted(m for m in found if layer(m) > layer("induction_lib.scores")) == [
        "induction_lib.plots", "induction_lib.plots.OKABE_ITO", "induction_lib.widgets"]
