"""Time every tutorial as a learner runs it: its learner mode where it has one (`learner=True`), else its defaults.

    python scripts/time_tutorials.py [--full] [--only 03_kd_methods ...] [--out tutorial_times.json]

Each tutorial runs once through papermill (`sftkd_edu.runner.run_notebook`, progress bars off) in a fresh temporary
folder; the wall time includes the kernel's start. `--full` also times the defaults of the tutorials that have a learner
mode (tutorial 06's defaults train for hours: it is left out). Prints a markdown table and writes the figures as JSON.
"""
import argparse
import json
import tempfile
import time
from pathlib import Path

from sftkd_edu.runner import list_tutorials, notebook_params, run_notebook, tutorial_path, versions

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--full", action="store_true", help="also time the defaults of tutorials with a learner mode (not 06)")
p.add_argument("--only", nargs="*", default=None, help="these tutorials only")
p.add_argument("--out", default="tutorial_times.json")
args = p.parse_args()
runs = []
for name in args.only or list_tutorials():
    has_learner = "learner" in notebook_params(tutorial_path(name))
    modes = (["learner"] if has_learner else ["defaults"]) + (["defaults"] if args.full and has_learner
                                                              and not name.startswith("06") else [])
    for mode in modes:
        with tempfile.TemporaryDirectory() as d:
            params = {"progress": False, **({"learner": True} if mode == "learner" else {})}
            t0 = time.perf_counter()
            run_notebook(name, d, params, timeout=None)
            runs.append({"tutorial": name, "mode": mode, "wall_s": round(time.perf_counter() - t0, 1)})
            print(json.dumps(runs[-1]), flush=True)
Path(args.out).write_text(json.dumps({"versions": versions(), "runs": runs}, indent=1))
print("\n| tutorial | mode | wall time |\n|---|---|---|")
for r in runs: print(f"| {r['tutorial']} | {r['mode']} | {r['wall_s'] / 60:.1f} min ({r['wall_s']:.0f} s) |")
