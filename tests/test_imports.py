"""The package's import structure: no module imports the command line (``bootgpu.cli``) except
``bootgpu.__main__``, and the modules' imports of each other (deferred ones included) form no cycle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "bootgpu"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


# Imports each module in turn in one fresh interpreter and names the first one after which
# bootgpu.cli is loaded; a module whose third-party dependency is missing is left out.
_PROBE = """
import importlib, json, sys
found, skipped = None, []
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "bootgpu":
            raise
        skipped.append(name)
    if found is None and "bootgpu.cli" in sys.modules:
        found = name
print(json.dumps({"found": found, "skipped": skipped}))
"""


def test_no_module_imports_the_cli():
    names = [n for n in _modules() if n not in ("bootgpu.cli", "bootgpu.__main__")]
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(names)], capture_output=True, text=True,
                          cwd=PACKAGE.parent, check=True)  # fmt: skip
    result = json.loads(proc.stdout)
    assert result["found"] is None, f"importing {result['found']} imports bootgpu.cli"
    assert "bootgpu.sge" not in result["skipped"] and "bootgpu.options" not in result["skipped"]


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (top level or in a function)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]  # fmt: skip
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles():
    graph = _import_graph()
    assert "bootgpu.options" in graph["bootgpu.sge.commands"]  # the graph sees imports
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # and the search finds a cycle
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert not {name for name, deps in graph.items() if "bootgpu.cli" in deps} - {"bootgpu.__main__"}


def test_the_version_is_pyprojects():
    import tomllib
    from pathlib import Path

    from bootgpu import __version__

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]


ROOT = PACKAGE.parent
LONGEST_FUNCTION = 80  # lines, docstring included (issue 11: none longer outside tests)


def _sources():
    for folder in ("bootgpu", "tests", "benchmarks", "scripts"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_module_imports_another_modules_private_names():
    """``from bootgpu.x import _name`` anywhere (package, tests, benchmarks, scripts) would tie the
    importer to another module's internals; dunder names (``__version__``) are public."""
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bootgpu"):
                found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert not found, "imports of private names:\n" + "\n".join(found)


def test_no_function_of_the_package_is_longer_than_the_limit():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over the limit:\n" + "\n".join(long)


def test_a_run_does_not_import_scipy_stats():
    """scipy.stats is ~0.6 s of import at the start of every run and every array task; what a study
    computes (pipeline, networks, parts, the finish, the workers) must not load it."""
    probe = ("import sys, bootgpu.cli, bootgpu.study.run, bootgpu.pipeline, bootgpu.networks, bootgpu.null, "
             "bootgpu.backends.numpy_backend; print('scipy.stats' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=PACKAGE.parent, check=True)
    assert proc.stdout.strip() == "False"
