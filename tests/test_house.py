"""House rules checked on the source itself (read with `ast`, nothing is imported or run).

- imports run one way: no file imports itself back through others (module-level imports, the ones
  that run when a module is imported; imports inside functions and `if TYPE_CHECKING:` blocks are
  lazy or never run, and do not count);
- the config is a leaf of the model code: nothing in `drc.models` or `drc.weights` imports
  `drc.config` (at any level), and importing `drc.config` loads no backend;
- no file in `src/` is over 400 lines and no function over 100.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "drc"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 100


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], module_level: bool) -> Iterator[ast.stmt]:
    """The statements of `body` that run with it: nested blocks (if / try / with) but no function or
    class bodies when `module_level`, and never an `if TYPE_CHECKING:` block."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _statements(node.orelse, module_level)
            continue
        yield node
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], (ast.stmt, ast.excepthandler)):
                yield from _statements(inner, module_level)  # type: ignore[arg-type]


def _imports(name: str, module_level: bool) -> set[str]:
    """The package modules `name` imports (module-level ones only, or every one that can run)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _statements(ast.parse(path.read_text()).body, module_level):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out.update(t for t in targets if t in MODULES and t != name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_files():
    graph = {name: _imports(name, module_level=True) for name in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_models_and_weights_do_not_import_the_config():
    lower = [n for n in MODULES if n.startswith("drc.models") or n == "drc.weights"]
    assert len(lower) > 5
    bad = {n: sorted(i) for n in lower if (i := _imports(n, module_level=False) & {"drc.config"})}
    assert bad == {}


def test_importing_the_config_loads_no_backend():
    seen, todo = set(), ["drc.config"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imports(name, module_level=True))
    assert "drc.models.generator_config" in seen  # the walk follows the config's own imports
    assert sorted(n for n in seen if n.startswith("drc.backends")) == []


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_file_over_400_lines_and_no_function_over_100():
    long_files, long_functions = [], []
    for path in MODULES.values():
        text = path.read_text()
        where = path.relative_to(PACKAGE).as_posix()
        if (n := len(text.splitlines())) > MAX_FILE_LINES:
            long_files.append(f"{where}: {n} lines")
        for fn in _functions(ast.parse(text)):
            n = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if n > MAX_FUNCTION_LINES:
                long_functions.append(f"{where}:{fn.lineno} {fn.name}: {n} lines")
    assert long_files == [] and long_functions == []
