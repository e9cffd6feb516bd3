"""The house's import rules, read from the source (every import, at module level or inside a
function): a lower layer never imports a higher one, and no two modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "recxplore"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS = [
    (
        "core",
        {
            "errors",
            "registry",
            "config",
            "cache",
            "runtime",
            "world",
            "dropout",
            "tables",
            "contrastive",
            "__init__",
        },
    ),
    ("data", {"data"}),
    ("llm", {"llm"}),
    ("text", {"text"}),
    ("extract", {"extract"}),
    ("tune", {"tune"}),
    ("adapt", {"adapt"}),
    ("backbones", {"backbones"}),
    ("eval", {"eval"}),
    ("train", {"train"}),
    (
        "pipeline",
        {"pipeline", "sweep", "ray_runs", "local_runs", "report", "report_groups", "diagnose"},
    ),
    ("serve", {"serve"}),
    ("cli", {"cli", "__main__"}),
]


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, (_, names) in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module}: in no layer; add its package to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found |= {n for n in names if n.startswith("recxplore")}
        graph[module] = found
    known = set(graph)
    return {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}


def test_no_lower_layer_imports_a_higher_one():
    upward = []
    for module, deps in imports().items():
        for dep in deps:
            if layer_of(dep) > layer_of(module):
                upward.append(
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {dep} "
                    f"({LAYERS[layer_of(dep)][0]})"
                )
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if dep.startswith(module + "."):
                continue  # a package importing its own modules to register them
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_every_module_has_a_layer():
    for module in imports():
        layer_of(module)
