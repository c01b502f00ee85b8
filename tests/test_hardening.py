"""Adversarial input (issue 19): parameters are data, never code, at every entry point; malformed configs, parameters
and options end in one clear line and exit status 2 — never a traceback, never code execution, never a half-written file.

The command line is driven in-process (`sftkd_edu.cli.main(argv)`, what the console script calls), so that hundreds of
probes take seconds; one probe per entry point also runs the real console command."""
import contextlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from sftkd_edu.cli import main
from sftkd_edu.grids import load_sweep
from sftkd_edu.runner import check_params, notebook_params, tutorial_path

# a string literal that ends early becomes code in papermill's cell
EVIL = '"+str(__import__("os").system("touch PWNED"))+"'
EVIL_B64 = "IitzdHIoX19pbXBvcnRfXygib3MiKS5zeXN0ZW0oInRvdWNoIFBXTkVEIikpKyI="   # base64 of EVIL, for YAML's !!binary


def cli(*argv, cwd):
    "Run `sftkd ARGV` in-process in `cwd`: (exit status, stderr)."
    err, old = io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try: code = main(list(argv))
            except SystemExit as e: code = e.code   # argparse's own errors (usage line + message) exit 2
    finally: os.chdir(old)
    return code, err.getvalue()


def one_clear_line(code, err, prefix):
    lines = [l for l in err.strip().splitlines() if not l.startswith("usage:")]   # argparse prints its usage line first
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err[-2000:])
    assert lines[0].startswith(prefix), lines[0]


@pytest.fixture
def work(tmp_path):
    yield tmp_path
    assert not (tmp_path / "PWNED").exists(), "a parameter value ran as code"


def test_malicious_values_never_run_at_any_entry_point(work):
    """The reproduction of issue 19 (a !!binary value whose bytes end papermill's string literal) and its cousins,
    everywhere input enters."""
    sweeps = {"binary.yaml": f"base: {{tags: {{x: !!binary {EVIL_B64}}}}}\ngrid: {{seed: [0]}}\n",
              "set.yaml": "base: {tags: {x: !!set {a: null}}}\ngrid: {seed: [0]}\n",
              "date.yaml": "base: {method_params: {T: [1, 2026-01-01]}}\ngrid: {seed: [0]}\n",
              "grid.yaml": f"grid: {{data_options: [{{root: !!binary {EVIL_B64}}}]}}\n",
              "key.yaml": "base: {tags: {1: x}}\ngrid: {seed: [0]}\n"}
    for name, text in sweeps.items():
        (work / name).write_text(text)
        code, err = cli("sweep", name, "--out", "g", "--quiet", cwd=work)
        one_clear_line(code, err, "sftkd sweep: error:")
        assert "is not allowed" in err, err
    for bad in ("tags={'x': {1, 2}}", "data_options={'root': b'x'}", "method_params={'T': 1j}"):
        code, err = cli("sweep", "digits100-quick", "--out", "g", "--quiet", "--param", bad, cwd=work)
        one_clear_line(code, err, "sftkd sweep: error:")
    code, err = cli("quickstart", "--out", "q", "--quiet", "--param", "lr={1, 2}", cwd=work)
    one_clear_line(code, err, "sftkd quickstart: error:")
    (work / "p.yaml").write_text(f"01_quickstart: {{dataset: !!binary {EVIL_B64}}}\n")
    code, err = cli("docs", "site", "--params-file", "p.yaml", "--execute", "01_quickstart", cwd=work)
    one_clear_line(code, err, "sftkd docs: error:")
    assert not (work / "g").exists() and not (work / "q").exists() and not (work / "site").exists(), "nothing is written"
    # the Python API: the same single check
    defaults = notebook_params(tutorial_path("07_experiment"))
    with pytest.raises(ValueError, match=r"tags\.x: bytes is not allowed"):
        check_params({"tags": {"x": EVIL.encode()}}, defaults)
    with pytest.raises(ValueError, match=r"data_options\.root: bytes is not allowed"):
        load_sweep({"grid": {"data_options": [{"root": EVIL.encode()}]}})
    # and once through the real console command
    r = subprocess.run([str(Path(sys.executable).parent / "sftkd"), "sweep", "binary.yaml", "--quiet"], cwd=work,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "tags.x: bytes is not allowed" in r.stderr, r.stderr


def test_a_string_with_quotes_reaches_the_notebook_as_data(work):
    """What does reach papermill — a plain string, here the payload itself — arrives as the same string, escaped: never
    code."""
    import nbformat

    from sftkd_edu.runner import run_notebook
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "python3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('x = ""', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('open("got.txt", "w").write(x)')]
    nbformat.write(nb, str(work / "echo.ipynb"))
    run_notebook(work / "echo.ipynb", work / "run", {"x": EVIL}, timeout=120)
    assert (work / "run" / "got.txt").read_text() == EVIL


def test_bad_options_of_every_command_fail_cleanly(work):
    (work / "afile").write_text("x")
    (work / "s.yaml").write_text("base: {n_train: 200}\ngrid: {seed: [0]}\n")
    (work / "g" / "runs" / "r1").mkdir(parents=True)
    # a bare record: no params, no results
    (work / "g" / "runs" / "r1" / "record.json").write_text(json.dumps({"status": "ok"}))
    probes = [(("quickstart", "--out", "afile", "--quiet"), "sftkd quickstart: error:", "is not a folder"),
              (("quickstart", "--out", "q", "--param", "out_dir=elsewhere"), "sftkd quickstart: error:",
               "set by sftkd quickstart itself"),
              (("quickstart", "--out", "q", "--param", "progress=True"), "sftkd quickstart: error:",
               "set by sftkd quickstart itself"),
              (("sweep", "s.yaml", "--out", "afile", "--quiet"), "sftkd sweep: error:", "is not a folder"),
              (("sweep", "s.yaml", "--out", "g2", "--workers", "0", "--quiet"), "sftkd sweep: error:",
               "workers must be an int ≥ 1, got 0"),
              (("sweep", "s.yaml", "--out", "g2", "--param", "seed=3"), "sftkd sweep: error:",
               "would be overridden by the grid"),
              (("bench", "--threads", "-2", "--steps", "standard", "--impls", "sftkd"),
               "sftkd bench: error:", "threads must be an int ≥ 1"),
              (("report", "afile"), "sftkd report: error:", "no runs")]
    for argv, prefix, why in probes:
        code, err = cli(*argv, cwd=work)
        one_clear_line(code, err, prefix)
        assert why in err, (argv, err)
    assert not (work / "q").exists() and not (work / "g2").exists()
    # a bare record in a grid: reported as a broken run, not a traceback
    code, err = cli("report", "g", cwd=work)
    assert code == 0 and "FAILED r1: record corrupt" in err and "Traceback" not in err, err
    (work / "t").mkdir(); os.symlink(work / "nowhere.ipynb", work / "t" / "01_quickstart.ipynb")
    code, err = cli("tutorials", "t", cwd=work)                 # a dangling symlink of the same name: not replaced
    one_clear_line(code, err, "sftkd tutorials: error:")
    assert os.path.islink(work / "t" / "01_quickstart.ipynb")


# -- fuzz: random malformed sweep configs and parameter sets through the command line and the API --------------------
GOOD_BASE = {"n_train": 200, "n_test": 100, "teacher": "resnet8", "teacher_epochs": 1, "student_epochs": 1,
             "progress": False}
DEFECTS = {   # each makes a config invalid; a probe carries one to three of them
    "unknown key": lambda c, r: c.update(workerz=2),
    "unknown param": lambda c, r: c["base"].update({r.choice(["lrr", "epoch", "teacher_epoch", "Seed"]): 1}),
    "wrong type": lambda c, r: c["base"].update(r.choice([{"n_train": "many"}, {"teacher_epochs": 2.5}, {"lr": "fast"},
                                                          {"progress": "no"}, {"tags": [1]}, {"data_options": 3},
                                                          {"seed": True}])),
    "not data": lambda c, r: c["base"].update({r.choice(["tags", "data_options", "method_params"]):
                                                   {"x": r.choice(["!!binary", "!!set", "date"])}}),
    "bad grid": lambda c, r: c.update(grid=r.choice([{}, {"seed": []}, {"seed": 3}, "seed",
                                                     {"teacher,student": [["resnet20"]]}, [1, 2]])),
    "bad workers": lambda c, r: c.update(workers=r.choice([0, -1, "two", True, 1.5])),
    "bad template": lambda c, r: c.update(template=r.choice(["08_nothing", "", "../../etc/passwd"])),
    "bad out": lambda c, r: c.update(out=r.choice([3, ["x"], None])),
    "no grid": lambda c, r: c.pop("grid", None),
    "not a mapping": lambda c, r: (c.clear(), c.update(__list__=True)),
}


def yaml_of(cfg, r):
    "The config as YAML text, with the 'not data' markers turned into YAML tags that safe_load accepts."
    import yaml
    if cfg.get("__list__"):
        return r.choice(["- a\n- b\n", "just a string\n", "42\n", "{base: [\n"])   # not a mapping / not YAML
    text = yaml.safe_dump(cfg, default_flow_style=True)
    return (text.replace("'!!binary'", f"!!binary {EVIL_B64}").replace("'!!set'", "!!set {a: null}")
            .replace("date", "2026-01-01"))


def test_fuzz_200_malformed_configs_and_parameters(work):
    r = random.Random(19)
    for i in range(220):
        cfg = {"base": dict(GOOD_BASE), "grid": {"seed": [0, 1]}}
        names = sorted(r.sample(sorted(DEFECTS), r.randint(1, 3)),
                       key=lambda n: n in ("no grid", "not a mapping"))   # these two last
        for name in names: DEFECTS[name](cfg, r)
        (work / f"c{i}.yaml").write_text(yaml_of(cfg, r))
        code, err = cli("sweep", f"c{i}.yaml", "--out", f"g{i}", "--quiet", cwd=work)
        one_clear_line(code, err, "sftkd sweep: error:")
        assert not (work / f"g{i}").exists(), f"probe {i} wrote its grid folder"
    defaults = notebook_params(tutorial_path("01_quickstart"))
    values = [b"x", {1, 2}, (1, {2}), float("nan") * 0 + 1j, object(), {"a": {"b": [b"x"]}}, "x", -1, 3.5, None, [], {}]
    for i in range(200):   # the API: a parameter set either passes as plain data or raises ValueError naming the value
        params = {r.choice(list(defaults) + ["bogus"]): r.choice(values) for _ in range(r.randint(1, 4))}
        try: out = check_params(params, defaults)
        except ValueError as e: assert str(e) and "\n" not in str(e), e
        else: json.dumps(out)   # whatever passes is JSON data
