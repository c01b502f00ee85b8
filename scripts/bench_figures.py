"""The benchmark's figures as PNG files for the measured results (nbs/12_results.ipynb) and the docs, drawn by the
toolkit's own plotly builders from a grid folder's records and rendered by Debian's chromium (headless, offline; no
image-export package needed).

    python scripts/bench_figures.py studies/digits100-bench docs      # → docs/bench_gains.png, docs/bench_length.png
"""
import subprocess
import sys
import tempfile
from pathlib import Path

from sftkd_edu.experiments import bench_gains, bench_gains_at
from sftkd_edu.viz import plot_gain_by_length, plot_paired_gains


def png(fig, path:Path, width:int=1000, height:int=None):
    "Render a plotly figure to PNG with headless chromium."
    height = height or int(fig.layout.height or 450)
    with tempfile.TemporaryDirectory() as d:
        html = Path(d) / "fig.html"
        fig.update_layout(width=width, height=height, margin=dict(l=10, r=20, t=60, b=50)).write_html(
            html, include_plotlyjs=True, config={"displayModeBar": False})
        r = subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            f"--window-size={width},{height}", "--virtual-time-budget=5000",
                            f"--screenshot={path.resolve()}", html.as_uri()],
                           capture_output=True, text=True, timeout=120)
        if r.returncode or not path.exists(): sys.exit(f"chromium could not render {path}: {r.stderr[-1000:]}")
    return path


if __name__ == "__main__":
    grid, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    print(png(plot_paired_gains({f"{m} ← {r}": g for (m, r), g in bench_gains_at(grid, 30).items()},
                                "digits100-bench, 30 epochs: student of an SFTN-kind teacher − student of the standard "
                                "one"), out / "bench_gains.png"))
    print(png(plot_gain_by_length(bench_gains(grid, "kd", "sftn"), "KD student: the paper's SFTN teacher − the "
                                                                   "standard teacher, "
                                  "by schedule length"), out / "bench_length.png"))
