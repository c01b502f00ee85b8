"""Pack the committed grids under `studies/` into `sftkd_edu/assets/studies/<name>.json.gz` (their ok records only).

Tutorial 06's learner mode and `sftkd_edu.reports.shipped_study` read these files. Run from the repository root after a
study grid under `studies/` changed:  python scripts/pack_studies.py
"""
from pathlib import Path

from sftkd_edu.records import load_runs
from sftkd_edu.studies import pack_study

ROOT = Path(__file__).resolve().parents[1]
for grid in sorted(p for p in (ROOT / "studies").iterdir() if (p / "runs").is_dir()):
    out = pack_study(grid, ROOT / "sftkd_edu" / "assets" / "studies" / f"{grid.name}.json.gz")
    print(f"{grid.name}: {len(load_runs(grid)[0])} records → {out.relative_to(ROOT)} ({out.stat().st_size / 1e3:.0f} "
          "kB)")
