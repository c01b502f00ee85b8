"""The import graph of `sftkd_edu`: every `import` statement of every module (at the top or inside a function) walked
with `ast`; the graph must have no circle, so the modules stack in floors where each imports only from below."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "sftkd_edu"


def _modules() -> dict:
    "`{dotted name: file}` of every module of the package (the nbdev index `_modidx` is data, not code)."
    out = {}
    for f in PKG.rglob("*.py"):
        if f.name == "_modidx.py": continue
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imported(name: str, f: Path, mods: dict, node) -> set:
    "The package modules one import statement of module `name` (file `f`) reaches."
    if isinstance(node, ast.Import): targets = [a.name for a in node.names]
    else:
        if node.level:   # relative: from the module's package, one level up per extra dot
            pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
        else: base = node.module or ""
        targets = [base] + [f"{base}.{a.name}" for a in node.names]   # `from pkg import module` reaches the module
    out = set()
    for t in targets:
        while t and t not in mods and "." in t: t = t.rsplit(".", 1)[0]   # a name inside a module: that module
        if t in mods and t != name: out.add(t)
    return out


def import_graph() -> dict:
    mods = _modules()
    return {m: set().union(*[_imported(m, f, mods, n) for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
                             if isinstance(n, (ast.Import, ast.ImportFrom))]) for m, f in mods.items()}


def floors(graph: dict) -> list:
    "The modules in floors: each floor imports only from the floors below. Raises naming a circle if there is one."
    placed, out = set(), []
    while len(placed) < len(graph):
        floor = sorted(m for m in graph if m not in placed and graph[m] <= placed)
        if not floor:
            left = {m: graph[m] - placed for m in graph if m not in placed}
            m, path = next(iter(left)), []
            while m not in path: path.append(m); m = sorted(left[m])[0]   # follow unplaced imports until one repeats
            raise AssertionError("import circle: " + " → ".join(path[path.index(m):] + [m]))
        out.append(floor); placed |= set(floor)
    return out


def test_the_walker_sees_circles_and_function_level_imports():
    "The checker itself: a circle through a function-level import is found and named."
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    try: floors(g)
    except AssertionError as e:
        assert "a → b → c → a" in str(e) or "b → c → a → b" in str(e) or "c → a → b → c" in str(e), e
    else: raise AssertionError("the circle a → b → c → a was not found")
    src = "def f():\n    from .reports import summarize\n"
    node = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)][0]
    assert _imported("sftkd_edu.grids", PKG / "grids.py", _modules(), node) == {"sftkd_edu.reports"}


def test_the_package_imports_have_no_circle():
    "No module imports one that (directly or through others) imports it back: `sweep` sits above `grids` and `reports`."
    graph = import_graph()
    assert "sftkd_edu.reports" in graph["sftkd_edu.sweep"] and "sftkd_edu.grids" in graph["sftkd_edu.sweep"]
    assert "sftkd_edu.reports" not in graph["sftkd_edu.grids"], graph["sftkd_edu.grids"]
    fl = floors(graph)
    assert sum(map(len, fl)) == len(graph)
