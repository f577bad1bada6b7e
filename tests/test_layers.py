"""The architecture holds: no import cycle, no layer importing one above it (DESIGN.md's
order), and no module over 400 lines. Read from the source with ``ast``; nothing is run."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
# Bottom up. ``stats`` sits below the harness, which builds its info from the table.
LAYERS = (
    ("tokens", "catalogue"),
    ("tools",),
    ("task",),
    ("stats",),
    ("transcript",),
    ("episode_start", "behaviours", "phases"),
    ("harness",),
    ("delegation",),
    ("envs",),
    ("models",),
    ("algos",),
    ("rollout", "wrappers", "monitors"),
    ("train",),
    ("experiments",),
    ("cli", "compile_cache", "envcheck", "plot", "render", "reference_tables", "text_env"),
)
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (``envs/`` is ``agentic_jax.envs``)."""
    found = {}
    for folder, package in (
        (ROOT / "agentic_jax", "agentic_jax"),
        (ROOT / "envs", "agentic_jax.envs"),
    ):
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (at any depth of its code)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))  # fmt: skip
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {t for t in targets if t in known and t not in (name, "agentic_jax")}
    return out


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{name} is in no layer of LAYERS")


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_no_layer_imports_one_above_it():
    upward = [f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
              if a != "agentic_jax" and layer(b) > layer(a)]  # fmt: skip
    assert not upward, upward


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_no_module_is_long():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}  # fmt: skip
    assert not long, long
