"""The package's layers: the engine at the bottom, the experiments above it, display on top.

Every import inside src/lmlab, at module level or inside a function, is an arrow from one
module to another. No arrow may point up a layer, experiments may not import each other
(a utility two chapters need moves down into the engine), and there is no cycle.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LAYERS = {"engine": 0, "experiments": 1, "display": 2}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "lmlab").rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("experiments", "display") else "engine"


def imports(path: Path, known: set[str]) -> set[str]:
    """The lmlab modules that `path` imports, anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lmlab")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lmlab"):
            for alias in node.names:  # `from lmlab import sweep` imports a module, `from lmlab import GPT` a name
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    known = set(mods)
    edges = {}
    for name, path in mods.items():
        targets = set()
        for target in imports(path, known):
            while target not in known:  # `import lmlab.x.y` where only lmlab.x is a module
                target = target.rsplit(".", 1)[0]
            targets.add(target)
        edges[name] = targets - {name}
    return edges


def violations(edges: dict[str, set[str]]) -> list[str]:
    """Every arrow that points up a layer, or from one experiment module to another. The package
    facades (`lmlab`, `lmlab.experiments`, `lmlab.display`) only re-export and are skipped."""
    facades = {"lmlab", "lmlab.experiments", "lmlab.display"}
    bad = []
    for source, targets in edges.items():
        if source in facades:
            continue
        for target in targets - facades:
            if LAYERS[layer(target)] > LAYERS[layer(source)]:
                bad.append(f"{source} ({layer(source)}) imports {target} ({layer(target)}): an upward arrow")
            elif layer(source) == layer(target) == "experiments":
                bad.append(f"{source} imports {target}: experiments use the engine, never each other")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search (each reported once, from where it closes)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_package_has_all_three_layers():
    assert {layer(m) for m in modules()} == set(LAYERS)


def test_no_import_points_up_a_layer():
    assert violations(graph(modules())) == []


def test_there_is_no_import_cycle():
    edges = graph(modules())
    assert cycles({k: v - {"lmlab", "lmlab.experiments", "lmlab.display"} for k, v in edges.items()}) == []


def test_the_checks_catch_what_they_are_for():
    """Controls: an upward arrow, an experiment importing another, and a cycle are all reported."""
    edges = {"lmlab.train": {"lmlab.experiments.scaling"}, "lmlab.experiments.scaling": {"lmlab.model"},
             "lmlab.model": {"lmlab.train"}, "lmlab.experiments.metrics": {"lmlab.experiments.randomness"},
             "lmlab.experiments.randomness": set(), "lmlab.display.mup": {"lmlab.experiments.scaling"}}
    assert violations(edges) == [
        "lmlab.experiments.metrics imports lmlab.experiments.randomness: experiments use the engine, never each other",
        "lmlab.train (engine) imports lmlab.experiments.scaling (experiments): an upward arrow"]
    assert cycles(edges) == [["lmlab.experiments.scaling", "lmlab.model", "lmlab.train", "lmlab.experiments.scaling"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_a_grab_bag(name):
    lines = modules()[name].read_text().count("\n")
    assert lines <= 300, f"{name} has {lines} lines: split it by idea"
