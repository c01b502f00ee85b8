"""Habits the notebooks keep (issue 33): an exported cell is read as a lesson, so none is longer than a screen or two."""
import json
from pathlib import Path

NBS = Path(__file__).resolve().parents[1] / "nbs"
MAX_EXPORT_CELL = 80   # lines; a longer piece is split at a definition, with a sentence of prose between the parts


def long_export_cells(folder=NBS, limit=MAX_EXPORT_CELL) -> list:
    "`(notebook, cell id, lines)` of every exported code cell longer than `limit` lines."
    out = []
    for nb in sorted(Path(folder).glob("*.ipynb")):
        for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            src = "".join(c["source"])
            if c["cell_type"] == "code" and src.lstrip().startswith("#| export") and len(src.splitlines()) > limit:
                out.append((nb.name, c.get("id"), len(src.splitlines())))
    return out


def test_the_check_finds_a_long_cell(tmp_path):
    cell = lambda n: {"cell_type": "code", "id": f"x{n}", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": ["#| export\n"] + ["x = 1\n"] * n}
    (tmp_path / "a.ipynb").write_text(json.dumps({"cells": [cell(10), cell(85)], "metadata": {},
                                                  "nbformat": 4, "nbformat_minor": 5}))
    assert long_export_cells(tmp_path) == [("a.ipynb", "x85", 86)]


def test_no_exported_cell_is_over_80_lines():
    assert long_export_cells() == []

def long_package_lines(folder=NBS.parent / "sftkd_edu", limit=120) -> list:
    "`(module, line number, length)` of every line over `limit` characters in the package, nbdev's own lines excepted."
    out = []
    for f in sorted(folder.rglob("*.py")):
        if f.name == "_modidx.py": continue   # nbdev's index: data it writes itself
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            # nbdev writes `__all__ = ` before a name list it wraps at 120 itself
            if len(line) > limit and not line.startswith("__all__ = ["): out.append((str(f.relative_to(folder)), i, len(line)))
    return out

def test_no_package_line_is_over_120_characters():
    assert long_package_lines() == []
