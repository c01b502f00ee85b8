"""Every library notebook in nbs/ runs top to bottom (its test cells are the unit tests), one test per notebook.

Cells flagged `#| slow` are skipped unless SFTKD_SLOW=1."""
import os
from pathlib import Path

import pytest
from nbdev.test import test_nb as run_nb  # renamed: pytest would collect a `test_*` name as a test

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    skip = ["notest"] + ([] if os.environ.get("SFTKD_SLOW") == "1" else ["slow"])
    ok, _ = run_nb(nb, skip_flags=skip, basepath=str(ROOT))
    assert ok, f"{nb.name} failed (traceback above)"


def test_there_are_notebooks():
    assert {p.stem for p in NBS} >= {"00_data", "01_models", "02_sftn", "04_train", "09_cli"}
