"""What committed studies hold stays valid when the code under them moves: every committed record's teacher key is the
key `teacher_key` computes today from the record's parameters, so a rerun of a study finds its cached teachers, and
every committed run is a run of a preset today, so a rerun of the presets finds it finished."""
import json
import subprocess
from pathlib import Path

from sftkd_edu.grids import load_sweep, run_id
from sftkd_edu.recipes import PRESETS

# the step the template (tutorials/07_experiment) takes from its parameters to the teacher config
from sftkd_edu.teachers import teacher_config, teacher_key

ROOT = Path(__file__).resolve().parents[1]


def _committed_records() -> list:
    out = subprocess.run(["git", "ls-files", "studies/*/runs/*/record.json"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.split()
    return [(ROOT / f, json.loads((ROOT / f).read_text())) for f in out]


def test_committed_teacher_keys_are_what_teacher_key_computes():
    recs = [(f, r) for f, r in _committed_records() if r.get("status", "ok") == "ok"]
    assert len(recs) >= 400, len(recs)   # the committed studies: benchmark, gap, laptop study
    wrong = [f.parent.name for f, r in recs if teacher_key(teacher_config(r["params"])) != r["teacher"]["key"]]
    assert not wrong, f"{len(wrong)} of {len(recs)} records' teacher keys changed, e.g. {wrong[:3]}"


def test_every_committed_run_is_a_run_of_a_preset():
    "Rerunning the presets finds every committed run finished: its folder ends in the hash of a preset run's parameters"
    # (a grid finds a run by that hash, whatever the readable part of its folder name: `grids._same_runs`)
    hashes = {run_id(c, []) for name in PRESETS for c in load_sweep(name).runs}
    recs = _committed_records()
    lost = [f.parent.name for f, _ in recs if f.parent.name.rsplit("-", 1)[-1] not in hashes]
    assert not lost, f"{len(lost)} of {len(recs)} committed runs are in no preset any more, e.g. {lost[:3]}"
