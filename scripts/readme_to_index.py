"""One-off merge helper: carry edits made directly to README.md back into nbs/index.ipynb.

README.md is generated from nbs/index.ipynb (`sftkd readme`). If README.md was edited by hand (e.g. on a
branch older than that rule), run `python scripts/readme_to_index.py` from the repository root: it splits
README.md into one markdown cell per `## ` section (headings inside code fences are left alone), keeps the
notebook's code cells (hidden checks) after them, and verifies that `sftkd readme` would give back README.md
byte for byte. Then `nbdev-clean` and commit both files.
"""
from pathlib import Path
import nbformat
from sftkd_edu.docs import readme_text

text = Path("README.md").read_text(encoding="utf-8")
if not text.endswith("\n") or text.endswith("\n\n"): raise SystemExit("README.md must end with exactly one newline")
chunks, cur, fence = [], [], False
for line in text[:-1].split("\n"):
    if line.startswith("```"): fence = not fence
    if line.startswith("## ") and not fence and cur:
        if cur[-1] != "": raise SystemExit(f"README.md: no blank line before {line!r}")
        chunks.append("\n".join(cur[:-1])); cur = []
    cur.append(line)
chunks.append("\n".join(cur))
nb = nbformat.read("nbs/index.ipynb", as_version=4)
code = [c for c in nb.cells if c.cell_type == "code"]
cells = []
for i, chunk in enumerate(chunks):
    c = nbformat.v4.new_markdown_cell(chunk); c.id = f"r{i:03d}"; cells.append(c)
nb.cells = cells + code
nbformat.write(nb, "nbs/index.ipynb")
if readme_text("nbs/index.ipynb") != text:
    raise SystemExit("round trip differs (a visible code cell in nbs/index.ipynb?): check nbs/index.ipynb by hand")
print(f"nbs/index.ipynb: {len(cells)} markdown cells from README.md (+{len(code)} code cells kept); `sftkd readme --check` passes")
