"""Every tutorial runs under papermill with tiny parameters (the same path `sftkd quickstart` takes)."""
import json
import math
import re
from pathlib import Path

import pytest
from conftest import QUICKSTART_TINY

from sftkd_edu.distill import list_methods
from sftkd_edu.experiments import NotebookError, load_runs, notebook_params, run_notebook
from sftkd_edu.runner import QUICK_PARAMS

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.ipynb"))
# tiny parameters per tutorial: seconds, not minutes — the package's quick mode, which `sftkd docs` runs too
TINY = QUICK_PARAMS


def test_every_tutorial_has_tiny_parameters():
    assert {p.stem for p in TUTORIALS} == set(TINY)


def used_params(got, stem, *keys):
    "The record's parameters for `keys` next to the tiny ones passed in (a parameter lost on the way shows here)."
    return {k: got.get(k) for k in keys}, {k: TINY[stem][k] for k in keys}


# run_notebook raises when a cell fails (no tutorial cell is tagged raises-exception), so a finished run is the check
# that every cell ran; these check what each tutorial produced, where a failure would not stop the notebook
# (a sweep records a failed run and goes on, a NaN is printed, a diverged method is set aside) or a parameter was lost.
def produced_00_kd_in_10_minutes(run_dir, executed):
    """The shipped teacher shows what the prose says: confident at T = 1, flatter as T rises, off-target mass on
    related classes."""
    rec = json.loads((run_dir / "kd_intro.json").read_text())
    assert rec["teacher"]["test_acc"] > 90, rec["teacher"]          # a trained teacher, whatever the tiny parameters
    ent = [r["mean entropy (nats)"] for r in rec["temperature"]]
    assert ([r["T"] for r in rec["temperature"]] == [1.0, 2.0, 4.0, 10.0]
            and ent == sorted(ent) and ent[-1] < math.log(100)), ent
    dk = rec["dark_knowledge"]
    assert dk["T = 4"] > 2 * dk["chance"], dk                       # measured 0.63 vs 0.18: the dark-knowledge claim
    # share × mass: T = 4 hands over more related-class probability than T = 1 (the prose says why KD uses it)
    m = dk["off_target_mass"]
    assert dk["T = 4"] * m["T = 4"] > dk["T = 1"] * m["T = 1"] and m["T = 4"] > m["T = 1"], dk
    assert [r["student"] for r in rec["table"]] == ["alone", "KD", "KD − alone (paired by seed)"]
    got, want = used_params(rec["params"], "00_kd_in_10_minutes", "n_train", "n_test", "epochs", "seeds")
    assert got == want


def produced_02_inside_sftn(run_dir, executed):
    """The trained models show what the prose says: a confident teacher at T = 1 whose entropy rises with T,
    branches that follow it."""
    def table(head):
        for c in executed["cells"]:
            for o in c.get("outputs", []):
                md = "".join(o.get("data", {}).get("text/markdown", ""))
                if md.startswith(head): return [[x.strip() for x in line.strip("|").split("|")]
                                                for line in md.splitlines()[2:]]
        raise AssertionError(f"no table starting {head!r}")
    rows = table("| T |")
    T, kl, top, ent = ([float(r[i]) for r in rows] for i in range(4))
    assert T == [1.0, 4.0, 10.0] and all(k >= 0 for k in kl), rows
    assert top[0] > 0.5 and ent[0] < ent[1] < ent[2], rows          # dark knowledge appears only as T rises
    sims = table("| teacher |")
    assert ([r[0] for r in sims] == ["standard teacher", "SFTN teacher"]
            and all(0 <= float(r[2]) <= 100 for r in sims)), sims
    text = " ".join("".join(o.get("data", {}).get("text/markdown", ""))
                    for c in executed["cells"] for o in c.get("outputs", []))
    agree = [float(x) for x in re.findall(r"its branches agree with it on ([0-9.]+) %", text)
             + re.findall(r"and ([0-9.]+) % \(trained", text)]
    assert len(agree) == 2 and min(agree) > 50, text[-3000:]   # the trained branches follow the teacher on this batch


def produced_03_kd_methods(run_dir, executed):
    rec = json.loads((run_dir / "kd_methods.json").read_text())
    assert [r["method"] for r in rec["table"]] == list_methods(), rec["table"]   # methods=[]: every method, in order
    assert rec["diverged"] == {}, rec["diverged"]
    got, want = used_params(rec["params"], "03_kd_methods", "n_train", "n_test", "teacher", "teacher_epochs",
                            "student_epochs")
    assert got == want


def produced_04_unknown_student(run_dir, executed):
    rec = json.loads((run_dir / "unknown_student.json").read_text())
    a, b = "SFTN (branches = A: wrn_16_1)", "SFTN (branches = B: resnet8)"
    assert [r["arm"] for r in rec["table"]] == ["standard", a, b, "student alone", "KD ← standard", f"KD ← {a}",
                                                f"KD ← {b}"]
    assert all(0 <= r["test acc (last)"] <= r["test acc (best)"] <= 100 for r in rec["table"]), rec["table"]
    got, want = used_params(rec["params"], "04_unknown_student", "n_train", "n_test", "teacher", "branches_a",
                            "student_b", "teacher_epochs", "student_epochs")
    assert got == want


def produced_05_reproduce_the_paper(run_dir, executed):
    ok, failed = load_runs(run_dir / "reproduce")
    assert failed == [], failed
    ps = sorted((r["params"]["teacher_kind"], r["params"]["method"], r["params"]["seed"], r["params"]["n_train"])
                for r in ok)
    assert ps == [("sftn", "kd", 0, 200), ("standard", "kd", 0, 200)]


def produced_06_when_sftn_helps(run_dir, executed):
    rec = json.loads((run_dir / "sftn_study.json").read_text())
    # study: 2 recipes × 2 regimes; bench: alone, kd ← 2 recipes
    for grid, n in (("sweep_sftn_laptop", 4), ("sweep_digits100_bench", 3)):
        ok, failed = load_runs(run_dir / grid)
        assert (len(ok), failed) == (n, []), (grid, len(ok), failed)
    assert [(r["regime"], r["recipe"], r["seeds"]) for r in rec["table"]] == [
        ("base", "standard", 1), ("base", "paper", 1),
        ("harder data", "standard", 1), ("harder data", "stop_kl_grad", 1)]
    got, want = used_params(rec["params"], "06_when_sftn_helps", "seeds", "n_train", "n_test", "epochs", "teacher",
                            "regimes")
    assert got == want


def produced_07_experiment(run_dir, executed):
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "ok" and len(rec["student"]["history"]["records"]) == 1   # student_epochs=1
    assert (0 <= rec["student"]["test_acc_last"] <= 100
            and all(math.isfinite(v) for v in rec["similarity"].values())), rec["similarity"]
    got, want = used_params(rec["params"], "07_experiment", "n_train", "n_test", "teacher", "teacher_kind", "method",
                            "teacher_epochs", "student_epochs")
    assert got == want


def produced_08_which_teacher(run_dir, executed):
    """Every teacher kind trained, distilled and reported on; the table, the ranks and the record agree with the
    parameters."""
    rec = json.loads((run_dir / "which_teacher" / "which_teacher.json").read_text())
    ok, failed = load_runs(run_dir / "which_teacher")
    recipes = notebook_params(ROOT / "tutorials" / "08_which_teacher.ipynb")["recipes"]
    # the student alone + one KD student per teacher kind
    assert (len(ok), failed) == (1 + len(recipes), []), (len(ok), failed)
    assert [r["teacher"] for r in rec["table"]] == recipes, rec["table"]
    assert sorted(v["teacher_kind"] for v in rec["reports"].values()) == sorted(
        r["params"]["teacher_kind"] for r in ok if r["params"]["method"] != "none")
    for rep in rec["reports"].values():
        assert all(math.isfinite(rep[q]) for q in ("test_acc", "ece", "entropy_T", "probe_kl", "probe_agreement")), rep
        assert rep["probe"]["epochs"] == TINY["08_which_teacher"]["probe_epochs"], rep["probe"]
    assert [r["quantity"] for r in rec["ranks"]["kd"]] == ["test_acc", "ece", "entropy_T", "probe_kl",
                                                           "probe_agreement"]
    got, want = used_params(rec["params"], "08_which_teacher", "source", "methods", "seeds", "epochs", "n_train",
                            "n_test", "probe_epochs")
    assert got == want


PRODUCED = {n.removeprefix("produced_"): f for n, f in list(globals().items()) if n.startswith("produced_")}
# the quickstart runs once per session (conftest.quickstart_run)
RUN_HERE = [p for p in TUTORIALS if p.stem != "01_quickstart"]


def test_every_tutorial_run_here_is_checked():
    assert {p.stem for p in RUN_HERE} == set(PRODUCED)


@pytest.mark.parametrize("nb", RUN_HERE, ids=[p.stem for p in RUN_HERE])
def test_tutorial_runs(nb, tmp_path):
    assert notebook_params(nb), f"{nb.name} has no cell tagged 'parameters'"
    out = run_notebook(nb, tmp_path, TINY[nb.stem], timeout=600)   # raises, naming the cell, if one fails
    PRODUCED[nb.stem](tmp_path, json.loads(out.read_text()))


UNANSWERED_ELSEWHERE = {"01_quickstart", "06_when_sftn_helps", "08_which_teacher"}   # run unanswered by the tests below


def _unanswered_prompts(executed) -> int:
    "How many exercise checks said 'write your answer' (each unanswered exercise's check cell says it once)."
    return sum("Write your answer in the cell above" in "".join(o.get("data", {}).get("text/markdown", ""))
               for c in executed["cells"] for o in c.get("outputs", []))


def _n_exercises(nb) -> int:
    "The exercises of a tutorial: its cells that set `answer_<n> = None` for the learner to fill in."
    return sum(len(re.findall(r"^answer_\d+ = None", "".join(c["source"]), re.M))
               for c in json.loads(Path(nb).read_text())["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("nb", [p for p in RUN_HERE if p.stem not in UNANSWERED_ELSEWHERE],
                         ids=[p.stem for p in RUN_HERE if p.stem not in UNANSWERED_ELSEWHERE])
def test_tutorial_runs_with_exercises_unanswered(nb, tmp_path):
    """Run All as a learner would, answering nothing: no exercise errors or stops the notebook; each one asks for
    its answer."""
    run_notebook(nb, tmp_path, dict(TINY[nb.stem], solutions=False), timeout=600)
    executed = json.loads((tmp_path / nb.name).read_text())
    # every tutorial has at least two exercises (tutorial 04 has three)
    assert _unanswered_prompts(executed) == _n_exercises(nb) >= 2, (_unanswered_prompts(executed), _n_exercises(nb))


def test_quickstart_runs(quickstart_run):
    """The run is conftest's `sftkd quickstart` (it fails on a failing cell); here: it ran with exactly the
    parameters given."""
    assert notebook_params(ROOT / "tutorials" / "01_quickstart.ipynb")
    got = {k: quickstart_run.record["params"].get(k) for k in QUICKSTART_TINY}
    assert got == QUICKSTART_TINY


def test_quickstart_sequential_equals_parallel(quickstart_run, tmp_path):
    """The session's quickstart ran its five trainings two at a time in two worker processes; one after another in
    the kernel (jobs=1), with the same one thread per training, every number is the same, bit for bit."""
    par = quickstart_run.record
    # the default jobs
    assert (par["params"]["jobs"], par["trainings"]["jobs"], par["trainings"]["threads"]) == (2, 2, 1)
    assert {lane for *_, lane in par["trainings"]["timeline_s"].values()} == {"process 1", "process 2"}
    # exercises unanswered
    run_notebook("01_quickstart", tmp_path, dict(QUICKSTART_TINY, jobs=1, progress=False, solutions=False))
    assert _unanswered_prompts(json.loads((tmp_path / "01_quickstart.ipynb").read_text())) == 2
    seq = json.loads((tmp_path / "quickstart.json").read_text())
    assert ({lane for *_, lane in seq["trainings"]["timeline_s"].values()} == {"process 1"}
            and seq["trainings"]["threads"] == 1)
    timings = ("time_s", "images_per_s")
    strip = lambda h: [{k: v for k, v in r.items() if k not in timings} for r in h["records"]]
    for arm, h in par["histories"].items():   # every epoch's losses and accuracies, as floats written in full
        assert strip(seq["histories"][arm]) == strip(h), arm
    assert seq["similarity"] == par["similarity"]   # the trained models' KL, agreement and CKA on the test set
    assert [{k: v for k, v in r.items() if k != "train time (s)"} for r in seq["table"]] == \
           [{k: v for k, v in r.items() if k != "train time (s)"} for r in par["table"]]


def test_quickstart_console_is_quiet(quickstart_run):
    """No kernel noise on a successful run: no TCP warning (the kernel runs on IPC sockets), no KeyboardInterrupt
    line at shutdown."""
    for noise in ("running over TCP without encryption", "KeyboardInterrupt"):
        assert noise not in quickstart_run.stderr, quickstart_run.stderr[-2000:]


def test_quickstart_record(quickstart_run):
    rec = quickstart_run.record
    assert rec["params"]["seed"] == 3 and rec["params"]["teacher_epochs"] == 2
    # the default: the same arithmetic everywhere
    assert rec["precision"] == "fp32" and rec["params"]["precision"] == "fp32"
    # what computed it: the CPU and its bf16 support
    assert "bf16" in rec["device_name"] and rec["versions"]["cpu"]
    assert all(h["meta"]["precision"] == "fp32" for h in rec["histories"].values())
    arms = [r["arm"] for r in rec["table"]]
    assert arms == ["standard teacher", "SFTN teacher", "student alone", "KD ← standard", "KD ← SFTN"]
    assert len(rec["histories"]["SFTN teacher"]["records"]) == 2
    assert len(rec["histories"]["KD ← SFTN"]["records"]) == 1
    sftn_terms = rec["histories"]["SFTN teacher"]["records"][-1]
    assert {"teacher_ce", "branch_kl", "branch_ce", "test_acc"} <= set(sftn_terms)
    for r in rec["table"]:
        assert 0 <= r["test acc (last)"] <= r["test acc (best)"] <= 100
    assert rec["versions"]["torch"]
    sims = {r["pair"]: r for r in rec["similarity"]}
    assert set(sims) == {"standard teacher → KD student", "SFTN teacher → KD student"}
    for r in sims.values():
        assert r["kl"] >= 0 and 0 <= r["agreement"] <= 100 and -1e-6 <= r["cka"] <= 1 + 1e-6
    assert set(rec["epochs_to_90pct"]) == {"student alone", "KD ← standard", "KD ← SFTN"}


def test_wrong_parameter_fails_before_running(tmp_path):
    with pytest.raises(ValueError, match="'teacher_epochs' must be int"):
        run_notebook("quickstart", tmp_path, {"teacher_epochs": "ten"})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['epochz'\]"):
        run_notebook("quickstart", tmp_path, {"epochz": 1})
    assert list(tmp_path.iterdir()) == []


def test_failing_cell_is_named(tmp_path):
    with pytest.raises(NotebookError, match=r"failed in cell .*unknown model 'resnet9'"):
        run_notebook("quickstart", tmp_path, dict(TINY["01_quickstart"], teacher="resnet9"))
    assert (tmp_path / "01_quickstart.ipynb").exists()   # the executed notebook is kept to inspect


def test_06_learner_mode_reads_the_shipped_studies(tmp_path):
    """learner=True: every grid comes from the records shipped with the package (no grid training); only section
    3 trains."""
    # the exercises unanswered (test_tutorial_runs answers them)
    params = dict(learner=True, progress=False, solutions=False)
    run_notebook("06_when_sftn_helps", tmp_path, params, timeout=600)
    assert _unanswered_prompts(json.loads((tmp_path / "06_when_sftn_helps.ipynb").read_text())) == 2
    rec = json.loads((tmp_path / "sftn_study.json").read_text())
    # the full study: 19 settings × 5 seeds
    assert len(rec["table"]) == 19 and all(r["seeds"] == 5 for r in rec["table"]), rec["table"]
    assert rec["benchmark"]["criteria"]["seeds"]["value"] == 5, rec["benchmark"]["criteria"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "shipped_digits100_bench", "shipped_digits100_gap", "shipped_sftn_laptop"]
    gap = rec["gap"]   # section 0: the capacity-gap study's shipped records, one verdict per comparison
    assert {c["comparison"] for c in gap["comparisons"]} >= {"KD ← standard vs alone",
                                                             "KD ← sftn vs KD ← standard"}, gap["comparisons"]
    assert (all(c["verdict"] for c in gap["comparisons"])
            and len(gap["verdict"]) == len({c["pair"] for c in gap["comparisons"]}) + 1)
    # one sentence per comparison, its verdict the table's
    b_cmp = [r for r in rec["benchmark"]["table"] if r["epochs"] == 30 and r["verdict"]]
    assert ([l.split(" — **")[-1].rstrip(".*") .split("**")[0] for l in rec["benchmark"]["verdict"][1:]]
            == [r["verdict"] for r in b_cmp]), rec["benchmark"]["verdict"]
    assert any(l.startswith("Detectable gains (Holm-corrected)") for l in rec["verdict"]), rec["verdict"]
    assert not list(tmp_path.glob("shipped_*/teachers")), "learner mode trained a grid teacher"


def test_08_reads_the_shipped_study(tmp_path):
    """The defaults: the benchmark's which-teacher records and teacher reports shipped with the package — no
    training, the full table."""
    # the exercises unanswered
    run_notebook("08_which_teacher", tmp_path, dict(progress=False, solutions=False), timeout=600)
    assert _unanswered_prompts(json.loads((tmp_path / "08_which_teacher.ipynb").read_text())) == 2
    rec = json.loads((tmp_path / "which_teacher" / "which_teacher.json").read_text())
    recipes = notebook_params(ROOT / "tutorials" / "08_which_teacher.ipynb")["recipes"]
    assert ([r["teacher"] for r in rec["table"]] == recipes
            and len(rec["reports"]) == 5 * len(recipes)), (rec["table"], len(rec["reports"]))
    assert all(r["kd seeds gaining"] == "—" or r["kd seeds gaining"].endswith("/5")
               for r in rec["table"]), rec["table"]
    # teachers below trained_above (10 %) are not ranked: the count follows from the table
    left_out = rec["left_out_of_ranks"]
    acc = {r["teacher"]: float(r["teacher acc"].split(" ±")[0]) for r in rec["table"]}
    assert left_out == [rc for rc in recipes if acc[rc] < 10], (left_out, acc)
    assert all(r["n teachers"] == 5 * (len(recipes) - len(left_out)) for r in rec["ranks"]["kd"]), rec["ranks"]["kd"]
    assert all(r["kd verdict"] == "" or r["kd verdict"] in ("helps", "hurts", "no detectable difference at 5 seeds")
               for r in rec["table"]), [r["kd verdict"] for r in rec["table"]]
    assert not list(tmp_path.glob("which_teacher/**/teachers")), "the shipped mode trained a teacher"
