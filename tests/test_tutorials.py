"""Every tutorial runs under papermill with tiny parameters (the same path `sftkd quickstart` takes)."""
import json
from pathlib import Path
import pytest
from sftkd_edu.experiments import run_notebook, notebook_params, NotebookError

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9]*.ipynb"))
# tiny parameters per tutorial: seconds, not minutes
TINY = {
    "01_quickstart": dict(n_train=200, n_test=100, teacher="resnet8", teacher_epochs=1, student_epochs=1, progress=False),
    "03_kd_methods": dict(n_train=200, n_test=100, teacher="resnet8", teacher_epochs=1, student_epochs=2,
                          methods=[], progress=False),   # every method; 2 epochs so AB/FT/FSP/SSKD pass their init phase
    "02_inside_sftn": dict(n_train=200, n_test=100, teacher="resnet8", batch_size=8, epochs=1, progress=False),
    "07_experiment": dict(n_train=200, n_test=100, teacher="resnet8", teacher_kind="sftn_finetune", method="crd",
                          teacher_epochs=1, student_epochs=1, progress=False),
    "05_reproduce_the_paper": dict(seeds=[0], methods=["kd"], n_train=200, teacher_epochs=1, student_epochs=1, progress=False),
    "06_when_sftn_helps": dict(bench_seeds=[0], bench_epochs=1, bench_n_train=200, bench_methods=["kd"], bench_recipes=["standard", "sftn"],
                               seeds=[0], n_train=200, n_test=100, epochs=1, teacher="resnet8", recipes=["standard", "paper"],
                               regime_recipes=["standard", "stop_kl_grad"], regimes=["harder data"], demo_n_train=200,
                               demo_epochs=1, progress=False),
    "04_unknown_student": dict(n_train=200, n_test=100, teacher="resnet8", branches_a="wrn_16_1", student_b="resnet8",
                               teacher_epochs=1, student_epochs=1, progress=False),
}


def test_every_tutorial_has_tiny_parameters():
    assert {p.stem for p in TUTORIALS} == set(TINY)


def errors_in(executed):
    return [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]


RUN_HERE = [p for p in TUTORIALS if p.stem != "01_quickstart"]   # the quickstart runs once per session (conftest.quickstart_run)


@pytest.mark.parametrize("nb", RUN_HERE, ids=[p.stem for p in RUN_HERE])
def test_tutorial_runs(nb, tmp_path):
    assert notebook_params(nb), f"{nb.name} has no cell tagged 'parameters'"
    out = run_notebook(nb, tmp_path, TINY[nb.stem], timeout=600)
    assert out.exists()
    assert not errors_in(json.loads(out.read_text()))


def test_quickstart_runs(quickstart_run):
    assert notebook_params(ROOT / "tutorials" / "01_quickstart.ipynb")
    assert not errors_in(quickstart_run.notebook)


def test_quickstart_record(quickstart_run):
    rec = quickstart_run.record
    assert rec["params"]["seed"] == 3 and rec["params"]["teacher_epochs"] == 2
    assert rec["precision"] == "fp32" and rec["params"]["precision"] == "fp32"   # the default: the same arithmetic everywhere
    assert "bf16" in rec["device_name"] and rec["versions"]["cpu"]             # what computed it: the CPU and its bf16 support
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
