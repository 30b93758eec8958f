"""The import structure of src/tformer: no circles, and arrows only in the declared directions.

Drawn from the source with ``ast`` (every ``import`` statement, also those inside functions). Run it from the
repository root to print the drawing: ``python -m tests.test_architecture`` (``--dot`` for Graphviz).
docs/architecture.md describes the layers in words.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tformer"

# Each unit (a subpackage, or a module directly under tformer/) and the units it may import. A new unit must be
# placed here; an arrow not listed is an error. Read bottom-up: the base, the paper's parts, models, the
# applications built on models, then the front doors.
BASE = {"errors", "files", "pretrained", "devices"}
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "devices": set(),
    "files": {"errors"},
    "pretrained": {"errors"},
    "nn": set(),  # the paper's parts import nothing else of tformer
    "text": set(BASE),
    "data": BASE | {"text"},
    "evaluation": BASE | {"data", "text"},
    "models": BASE | {"nn", "text", "data"},
    "decoding": BASE | {"models", "nn", "text", "data"},
    "inspect": BASE | {"decoding", "models", "nn", "text", "data"},
    "interop": BASE | {"decoding", "models", "nn", "text", "data"},
    "viz": BASE | {"inspect", "decoding", "models", "nn", "text", "data"},
    "training": BASE | {"decoding", "evaluation", "models", "nn", "text", "data"},
    "retrieval": BASE | {"decoding", "evaluation", "interop", "models", "nn", "text", "data"},
    "summarize": BASE | {"decoding", "evaluation", "interop", "models", "nn", "text", "data"},
}
# The front doors may import every unit below them: the package's public names (``tformer/__init__.py``, which
# also imports the interop formats so that they register), then the server and the demo, then the command line.
LAYERS["pipeline"] = set(LAYERS)  # tformer.pipeline(task): the one-line entry point over every application
LAYERS["__init__"] = set(LAYERS)
LAYERS["serve"] = LAYERS["demo"] = set(LAYERS)
LAYERS["cli"] = set(LAYERS)

# Arrows known to run the wrong way while their owners move them (each is checked to still exist, so a fixed one
# must be struck off here). Keep this empty: add to it only with a note of who removes the arrow.
PENDING: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Arrow:
    source: str  # module, e.g. tformer.models.bert
    target: str
    where: str  # file:line


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """The unit a module belongs to: ``tformer.models.bert`` -> ``models``; ``tformer`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_arrows() -> list[Arrow]:
    """Every import of one tformer module by another, resolved to the module file it runs."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    arrows = []
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # ``from package import module`` points at the module; ``from module import name`` at the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:  # tformer.nn.masks.causal_mask -> tformer.nn.masks
                    target = target.rpartition(".")[0]
                if target.startswith("tformer") and target != module:
                    arrows.append(Arrow(module, target, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"))
    return sorted(set(arrows), key=lambda a: (a.source, a.target, a.where))


def cycles(arrows: list[Arrow]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each a circle of imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a in arrows:
        graph[a.source].add(a.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def without_pending(arrows: list[Arrow]) -> list[Arrow]:
    return [a for a in arrows if (a.source, a.target) not in PENDING]


def unit_arrows(arrows: list[Arrow]) -> dict[tuple[str, str], list[Arrow]]:
    out: dict[tuple[str, str], list[Arrow]] = defaultdict(list)
    for a in arrows:
        source, target = unit_of(a.source), unit_of(a.target)
        if source != target:
            out[source, target].append(a)
    return out


# ------------------------------------------------------------------------------------------------------ tests


def test_every_unit_has_a_declared_place():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    undeclared = sorted(units - set(LAYERS))
    assert not undeclared, f"declare where {undeclared} sit in LAYERS (tests/test_architecture.py)"


def test_declared_layers_have_no_circle():
    arrows = [Arrow(s, t, "LAYERS") for s, targets in LAYERS.items() for t in targets]
    assert cycles(arrows) == []


def test_imports_point_only_in_declared_directions():
    wrong = [
        f"{a.where}: {a.source} imports {a.target} ({source} -> {target} is not a declared direction)"
        for (source, target), found in sorted(unit_arrows(without_pending(import_arrows())).items())
        if target not in LAYERS.get(source, set())
        for a in found
    ]
    assert not wrong, "imports that run against the layers:\n" + "\n".join(wrong)


def test_no_module_imports_itself_in_a_circle():
    circles = cycles(without_pending(import_arrows()))
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_pending_exceptions_still_exist():
    present = {(a.source, a.target) for a in import_arrows()}
    assert not PENDING - present, f"fixed, strike off PENDING: {sorted(PENDING - present)}"


def test_nn_imports_nothing_else_of_tformer():
    outside = [a for a in import_arrows() if unit_of(a.source) == "nn" and unit_of(a.target) != "nn"]
    assert not outside, [f"{a.where}: {a.target}" for a in outside]


def test_the_bert_format_is_registered_by_importing_only_the_model(tmp_path):
    """models/ does not import interop/, yet BertModel.from_pretrained works after importing just the model."""
    import subprocess

    code = (
        "import sys, torch\n"
        "from tformer.models.bert import BertConfig, BertModel\n"
        "model = BertModel(BertConfig(vocab_size=37, d_model=24, num_layers=1, num_heads=3, d_ff=40, max_len=16))\n"
        "model.save_pretrained(sys.argv[1])\n"
        "back = BertModel.from_pretrained(sys.argv[1])\n"
        "assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------------------------------------------------- script


def main(argv: list[str]) -> int:
    grouped = unit_arrows(import_arrows())
    if "--dot" in argv:
        print("digraph tformer {")
        for (source, target), found in sorted(grouped.items()):
            style = "" if target in LAYERS.get(source, set()) else " [color=red]"
            print(f'  "{source}" -> "{target}"{style};  // {len(found)} import(s)')
        print("}")
        return 0
    targets: dict[str, list[str]] = defaultdict(list)
    for source, target in sorted(grouped):
        mark = "" if target in LAYERS.get(source, set()) else " (NOT DECLARED)"
        targets[source].append(target + mark)
    for source in sorted(targets):
        print(f"{source:>12} -> {', '.join(targets[source])}")
    circles = cycles(import_arrows())
    for circle in circles:
        print("circle:", " <-> ".join(circle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
