import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the quickstart's tiny run, shared by every test that only reads its outputs (test_cli, test_tutorials): it runs once
# per session, through the console command, as a user runs it (with --static-images, PNGs of its figures, where a
# browser
# is: on a machine without Chrome/Chromium the quickstart refuses --static-images before it runs, so the run goes
# without)
QUICKSTART_TINY = dict(n_train=200, n_test=100, teacher="resnet8", teacher_epochs=2, student_epochs=1, seed=3,
                       solutions=True,   # its exercises run with their solutions: each is solvable
                       # one torch thread per training whatever the machine: test_quickstart_sequential_equals_parallel
                       # reruns it with jobs=1
                       threads=1)


@pytest.fixture
def root():
    return ROOT


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory):
    """`sftkd quickstart` once with tiny parameters: `.out` (its folder), `.stdout`, `.stderr`, `.record`
    (quickstart.json), `.notebook`."""
    import os

    from sftkd_edu.runner import find_browser
    cwd = tmp_path_factory.mktemp("quickstart")
    args = [a for k, v in QUICKSTART_TINY.items() for a in ("--param", f"{k}={v}")]
    static = find_browser() is not None or os.environ.get("SFTKD_REQUIRE_BROWSER") == "1"
    r = subprocess.run([str(Path(sys.executable).parent / "sftkd"), "quickstart", "--out", "q", "--quiet",
                        *(["--static-images"] if static else []), *args],
                       capture_output=True, text=True, cwd=cwd, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    out = cwd / "q"
    return SimpleNamespace(out=out, stdout=r.stdout, stderr=r.stderr,
                           record=json.loads((out / "quickstart.json").read_text()), static=static,
                           notebook=json.loads((out / "01_quickstart.ipynb").read_text()))
