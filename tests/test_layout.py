"""The package's arrows point one way: these rules read every import in edge/ (module level and the
lazy ones inside functions) with ``ast``, so a new import that breaks the layout fails here, with the
module and the import named, before a reviewer has to spot it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edge"

TOOLING = ("edge.tooling",)
"""Developer and benchmark tooling: the daemon (edge.service and all it imports) never needs it."""
LEAVES = ("edge.audio", "edge.model", "edge.device", "edge.telemetry")
"""Subpackages that know nothing of each other: only the engine, the service and the CLI join them."""
HARDWARE = ("gpiozero", "lgpio", "paho", "pyaudio")
ALLOWED_CYCLE_EDGES = {("edge.tooling.roombench.run", "edge.cli")}
"""The room bench drives the real CLI, the way a user teaches (and the CLI offers the bench):
a lazy import, kept on purpose."""

# Size limits of issue 14 (function ~60 lines, class ~200, module ~400). Anything over them would be
# listed here with its size, as a ratchet that may only shrink; nothing is over them today.
MAX_FUNCTION, MAX_CLASS, MAX_MODULE = 60, 200, 400
OVERSIZE: dict[str, int] = {}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``name`` imports: edge modules by full name, third-party ones by top-level name."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return {m if m.startswith("edge") else m.split(".")[0] for m in out if m and m != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _reach(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Modules reachable from ``start``, each with the module that imports it (to name the path)."""
    parent: dict[str, str] = {}
    todo = [start]
    while todo:
        m = todo.pop()
        for d in graph.get(m, ()):
            if d not in parent and d != start:
                parent[d] = m
                todo.append(d)
    return parent


def _path(parent: dict[str, str], start: str, end: str) -> str:
    chain = [end]
    while chain[-1] != start:
        chain.append(parent[chain[-1]])
    return " -> ".join(reversed(chain))


def test_the_daemon_never_imports_the_tooling(graph):
    parent = _reach(graph, "edge.service")
    bad = [_path(parent, "edge.service", m) for m in parent if _under(m, TOOLING)]
    assert not bad, f"the daemon imports tooling: {bad}"


def test_audio_knows_no_model_and_teaching_or_listening_no_pins_or_mqtt(graph):
    bad = []
    for m, deps in graph.items():
        if _under(m, ("edge.audio",)):
            bad += [f"{m} -> {d}" for d in deps if _under(d, ("edge.model", "edge.engine", "edge.service"))]
        if _under(m, ("edge.model", "edge.teach", "edge.listen")):
            parent = _reach(graph, m)
            bad += [_path(parent, m, d) for d in parent
                    if _under(d, ("edge.device", "edge.telemetry", "edge.web.server", "edge.engine", "edge.service")
                              + HARDWARE)]
        if _under(m, ("edge.listen",)):
            # the decision stage decides from probabilities: it never reads the store or trains
            bad += [f"{m} -> {d}" for d in graph[m] if _under(d, ("edge.teach", "edge.model"))]
    assert not bad, f"stage imports pointing the wrong way: {bad}"


def test_the_leaves_never_import_each_other(graph):
    bad = [f"{m} -> {d}" for m, deps in graph.items() for leaf in LEAVES if _under(m, (leaf,))
           for d in deps if _under(d, LEAVES) and not _under(d, (leaf,))]
    assert not bad, f"subpackages importing each other (join them in the engine or the service): {bad}"


def test_no_import_cycles(graph):
    edges = {m: {d for d in deps if d in graph and (m, d) not in ALLOWED_CYCLE_EDGES} for m, deps in graph.items()}
    # Tarjan's strongly connected components, iteratively (no recursion limit to think about)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on_stack.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    if len(comp) > 1:
                        cycles.append(sorted(comp))
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(edges[w]))))
            elif w in on_stack:
                low[v] = min(low[v], index[w])
    assert not cycles, f"import cycles: {cycles}"


def _sizes() -> dict[str, tuple[int, int]]:
    """Every module, class and function of edge/: name → (lines, limit)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        out[rel] = (len(text.splitlines()), MAX_MODULE)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                key = f"{rel}:{node.name}"
                out[key] = max(out.get(key, (0, limit)), (lines, limit))
    return out


def test_sizes_stay_within_limits_and_the_oversize_list_only_shrinks():
    sizes = _sizes()
    grown = [f"{k}: {n} lines (limit {lim}{', was ' + str(OVERSIZE[k]) if k in OVERSIZE else ''})"
             for k, (n, lim) in sizes.items() if n > lim and n > OVERSIZE.get(k, lim)]
    assert not grown, f"split these (or, for a listed one, do not let it grow): {grown}"
    fixed = [k for k in OVERSIZE if k not in sizes or sizes[k][0] <= sizes[k][1]]
    assert not fixed, f"now within the limits: remove from OVERSIZE in tests/test_layout.py: {fixed}"
    shrunk = {k: sizes[k][0] for k in OVERSIZE if sizes[k][0] < OVERSIZE[k]}
    assert not shrunk, f"smaller now (good): lower their figures in OVERSIZE so they cannot grow back: {shrunk}"


def test_the_rules_see_a_bad_import(tmp_path, graph):
    """The checker itself: a lazy import of the bench in the engine must be found."""
    fake = dict(graph)
    fake["edge.engine.core"] = graph["edge.engine.core"] | {"edge.tooling.bench"}
    parent = _reach(fake, "edge.service")
    assert _path(parent, "edge.service", "edge.tooling.bench").endswith("edge.engine.core -> edge.tooling.bench")
    src = tmp_path / "edge" / "audio" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("def f():\n    from ..model import train\n    import paho.mqtt.client\n")
    assert _imports("edge.audio.x", src, {"edge.model.train": src}) >= {"edge.model", "edge.model.train", "paho"}
