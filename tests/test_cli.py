"""The `sftkd` console command as a user runs it (a real subprocess)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest


def sftkd(*args, cwd=None):
    exe = Path(sys.executable).parent / "sftkd"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, timeout=900)


def test_version_and_help():
    import sftkd_edu
    r = sftkd("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"sftkd_edu {sftkd_edu.__version__}"
    r = sftkd("--help")
    assert r.returncode == 0 and "quickstart" in r.stdout
    for argv, heavy in ((["--version"], ("torch", "plotly", "papermill")),
                        (["--help"], ("torch", "plotly", "papermill")),
                        # answered before anything heavy is imported (papermill reads parameters)
                        (["sweep", "--help"], ("torch", "plotly"))):
        code = (f"import sys\nfrom sftkd_edu.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass\n"
                f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120).stdout.strip().splitlines()[-1]
        assert got == "[]", (argv, got)


def test_quickstart_help_lists_the_notebook_parameters():
    from sftkd_edu.runner import notebook_params, tutorial_path
    r = sftkd("quickstart", "--help")
    assert r.returncode == 0, r.stderr
    for name in notebook_params(tutorial_path("01_quickstart")):
        if name in ("out_dir", "progress"):
            assert f"  {name} = " not in r.stdout, name   # the command's own (--out, --quiet)
        else: assert f"  {name} = " in r.stdout, name
    # default and comment, from the parameters cell
    assert "  teacher_epochs = 10  # epochs for each teacher" in r.stdout
    r = sftkd("sweep", "--help")   # a sweep's runs are the experiment template's: its parameters
    assert (r.returncode == 0 and "notebook parameters of 07_experiment.ipynb" in r.stdout
            and "  teacher_kind = " in r.stdout), r.stdout[-1500:]


def test_quickstart_tiny(quickstart_run):
    out = quickstart_run.out
    assert sorted(p.name for p in out.iterdir()) == ["01_quickstart.ipynb", "quickstart.html", "quickstart.json"]
    rec = quickstart_run.record
    assert rec["params"]["n_train"] == 200
    # the printed table is the record's table
    for row in rec["table"]:
        assert f"| {row['arm']} | {row['model']} |" in quickstart_run.stdout
    html = (out / "quickstart.html").read_text()
    # students' and teachers' curves, the trainings' timeline
    assert html.count('class="plotly-graph-div"') == 3 and "<script src=" not in html
    assert "(2 at a time, 1 torch thread(s) each)" in html


@pytest.mark.parametrize("param,msg", [("teacher_epochs=ten", "must be int"), ("epochz=1", "valid parameters"),
                                       ("noequals", "name=value")])
def test_bad_params_exit_2_before_running(tmp_path, param, msg):
    r = sftkd("quickstart", "--out", "q", "--param", param, cwd=tmp_path)
    assert r.returncode == 2 and msg in r.stderr
    assert not (tmp_path / "q").exists()


def test_sweep_tiny_then_report(tmp_path):
    """A 2-run sweep from a YAML file (one run fails on purpose), re-run (skips), and `sftkd report`."""
    (tmp_path / "s.yaml").write_text(
        "base: {n_train: 200, n_test: 100, teacher: resnet8, teacher_epochs: 1, student_epochs: 1, progress: false,\n"
        "       data_root: /no-such-sftkd-data}\n"   # digits100 needs no files; cifar10 finds none: it fails inside the run
        "grid: {teacher_kind: [standard, sftn], dataset: [digits100, cifar10]}\nout: g\n")
    r = sftkd("sweep", "s.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 1, r.stderr                      # the two cifar10 runs failed, and say why
    assert r.stderr.count("FAILED") == 2 and "folder '/no-such-sftkd-data' does not exist" in r.stderr, r.stderr[-2000:]
    assert "2 runs ok, 2 failed" in r.stdout and "| digits100 | resnet8 | resnet8 | kd | sftn |" in r.stdout
    records = sorted((tmp_path / "g" / "runs").glob("*/record.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    r = sftkd("sweep", "s.yaml", "--quiet", "--workers", "2", cwd=tmp_path)   # ok runs skipped, failed ones retried
    ok = [p for p, s in zip(records, stamps) if json.loads(p.read_text())["status"] == "ok"]
    assert len(ok) == 2 and all(p.stat().st_mtime_ns == s for p, s in zip(records, stamps) if p in ok)
    (tmp_path / "g" / "report.html").unlink()
    r = sftkd("report", "g", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "g" / "report.html").exists()
    assert "<script src=" not in (tmp_path / "g" / "report.html").read_text()


def test_bench_isolated_writes_records(tmp_path):
    "`sftkd bench` as users run it: each measurement in its own process, so CPU peak memory is reported."
    r = sftkd("bench", "--teacher", "resnet20", "--student", "resnet8", "--batch-size", "8", "--image-size", "16",
              "--in-chans", "1", "--num-classes", "10", "--steps", "sftn,kd", "--timed-steps", "2", "--warmup", "1",
              "--precision", "fp32", "--quiet", "--json", "out/bench.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    recs = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert [(x["step"], x["impl"]) for x in recs] == [("sftn", "sftkd"), ("sftn", "reference"), ("kd", "sftkd"),
                                                      ("kd", "reference")]
    assert {x["precision"] for x in recs} == {"fp32"} and all("bf16" in x["device_name"] for x in recs)
    for x in recs:
        assert x["images_per_s"] > 0 and isinstance(x["peak_mem_mb"], float) and x["peak_mem_mb"] > 0
        assert x["teacher"] == "resnet20" and x["batch_size"] == 8
    assert all(x["speedup_vs_reference"] > 0 for x in recs if x["impl"] == "sftkd")
    assert "| sftn |" in r.stdout and "| kd |" in r.stdout
    assert "step cost" not in r.stdout   # the SFTN overhead needs the standard step, which was not asked for


def test_bench_bad_input_exit_2(tmp_path):
    r = sftkd("bench", "--precision", "int4", "--json", "b.json", cwd=tmp_path)
    assert r.returncode == 2 and "valid: ['auto', 'fp32', 'bf16', 'fp16']" in r.stderr
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("value", [
    '!!binary ' + __import__("base64").b64encode(b'"+str(__import__("os").system("touch PWNED"))+"').decode(),   # bytes
    '!!set {"+str(__import__(\'os\').system(\'touch PWNED\'))+": null}',                                          # a set
    '2026-11-30',                                                                                                  # a date
])
def test_sweep_values_are_data_never_code(tmp_path, value):
    """A sweep config that passed yaml.safe_load but holds a non-JSON value deep inside a dict parameter: refused,
    nothing runs."""
    (tmp_path / "s.yaml").write_text(f"base: {{n_train: 200, tags: {{x: {value}}}}}\ngrid: {{seed: [0]}}\nout: g\n")
    r = sftkd("sweep", "s.yaml", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "tags.x:" in r.stderr and "is not allowed" in r.stderr, r.stderr
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "g").exists()


def test_static_images_without_a_browser_refused_at_once(tmp_path):
    """No browser (BROWSER_PATH pointing at nothing hides any installed one): --static-images is refused in one line,
    exit 2, before anything runs."""
    import os
    import time
    env = {**os.environ, "BROWSER_PATH": str(tmp_path / "no-chromium")}
    t0 = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).parent / "sftkd"), "quickstart",
                        "--static-images", "--out", "q", "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 2 and "none was found" in r.stderr and "apt-get install chromium" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "q").exists() and time.perf_counter() - t0 < 60


def test_quickstart_static_images(quickstart_run):
    """--static-images: every plotly figure of the executed notebook carries a PNG beside its JSON (GitHub and nbconvert
    show it)."""
    import base64
    if not quickstart_run.static:
        pytest.skip("no Chrome/Chromium on this machine (sftkd_edu.runner.find_browser): static images not checked; "
                    "apt-get install chromium (CI does, and sets SFTKD_REQUIRE_BROWSER=1)")
    outs = [o["data"] for c in quickstart_run.notebook["cells"] for o in c.get("outputs", [])
            if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(outs) >= 2, len(outs)
    assert all(base64.b64decode(d.get("image/png", ""))[:4] == b"\x89PNG" for d in outs), [sorted(d) for d in outs]


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, "
                                                       f"*{p}]\n"
                                                   for p, c in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("args, message", [
    (["--param", "tau=0.0"], "parameter tau must be in (0, ∞), got 0.0"),
    (["--param", "lam_kl=1e999"], "must be a finite number, got inf"),
    (["--param", "teacher_epochs=0"], "parameter teacher_epochs must be in [1, ∞), got 0"),
    (["--param", 'method_params={"T": 0.0}'], "parameter method_params.T must be in (0, ∞), got 0.0"),
    (["--param", "teacher_kind=nope"], "unknown teacher_kind 'nope'"),
    (["--set", "method=nope"], "unknown KD method 'nope'"),
    (["--param", "smoothing=0.2"], "option(s) ['smoothing'] have no effect on a 'standard' teacher"),
    (["--param", "student=resnet9"], "unknown student architecture 'resnet9'"),
    (["--param", "teacher_kind=sftn_multi", "--param", "student_mode=some"], "student_mode must be one of ['all', 'sampled']"),
    (["--param", "seed=1", "--param", "seed=2"], "--param seed given twice"),
    (["--threads", "0"], "threads must be"),
    (["--workers", "0"], "workers must be"),
    (["--dask-local", "0"], "--dask-local needs N ≥ 1"),
    (["--mlflow", "htp:/x"], "unknown scheme 'htp'"),
    (["--mlflow", "http://"], "names no host"),
    (["--set", "seed=[0, 1"], "is not a JSON list"),
    ([b"--param", b"data_root=a\x80b"], "cannot be written as UTF-8"),
    (["bomb.yaml"], "values once its aliases are expanded"),
])
def test_refused_before_anything_runs(tmp_path, monkeypatch, capsys, args, message):
    """Out-of-range, non-finite, unknown, foreign or malformed input: exit 2, one line naming it, no grid folder
    (in-process: the same main)."""
    from sftkd_edu.cli import main
    (tmp_path / "s.yaml").write_text("base: {n_train: 200, n_test: 100, teacher: resnet8, teacher_epochs: 1, "
                                     "student_epochs: 1}\n"
                                     "grid: {method: [kd]}\nout: g\n")
    (tmp_path / "bomb.yaml").write_text(BOMB + "grid: {seed: [0]}\n")
    monkeypatch.chdir(tmp_path)
    config = [] if args == ["bomb.yaml"] else ["s.yaml"]
    # what Python makes of a command line holding the byte 0x80: a lone surrogate (surrogateescape)
    args = [a.decode("utf-8", "surrogateescape") if isinstance(a, bytes) else a for a in args]
    rc = main(["sweep", *config, "--quiet", *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "g").exists(), err


def test_set_takes_json_for_values_with_commas():
    "--set NAME=[JSON list]: values that hold commas (a dict of data options) vary as given."
    from sftkd_edu.cli import _values
    assert _values('data_options=[{"distort": 1.0, "n_sources": 300}, {}]') == ("data_options",
                                                                                 [{"distort": 1.0, "n_sources": 300}, {}])
    assert _values("seed=0,1") == ("seed", [0, 1])
