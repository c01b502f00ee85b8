"""Crash safety: SIGKILL mid-epoch then resume, a damaged newest checkpoint, a killed sweep."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

# The training both sides run: a run killed with SIGKILL (in a subprocess) and the resumed and uninterrupted runs
# (here).
TRAIN = textwrap.dedent('''
    import os, sys, time
    import torch
    from sftkd_edu.data import load_dataset
    from sftkd_edu.models import create_model
    from sftkd_edu.train import fit, set_seed, Supervised

    class Slowed(Supervised):
        "Supervised, with a pause per step in the run that gets killed (the pause changes no number)."
        pause = 0.0
        def forward(self, x, y):
            time.sleep(self.pause); return super().forward(x, y)

    def train(checkpoint_dir=None, resume=False, pause=0.0):
        threads = torch.get_num_threads(); torch.set_num_threads(1)   # bitwise equality needs the same thread count on both sides
        try: return _train(checkpoint_dir, resume, pause)
        finally: torch.set_num_threads(threads)

    def _train(checkpoint_dir, resume, pause):
        data = load_dataset("digits100", n_train=200, n_test=100)
        set_seed(0)
        obj = Slowed(create_model("resnet8", num_classes=data.num_classes, in_chans=data.in_chans)); obj.pause = pause
        h = fit(obj, data, epochs=2, lr=0.05, batch_size=50, progress=False,
                checkpoint_dir=checkpoint_dir, checkpoint_every_steps=2 if checkpoint_dir else 0, resume=resume)
        return obj.model, h

    if __name__ == "__main__": train(sys.argv[1], pause=float(sys.argv[2]))
''')


def strip(h): return [{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in h.records]


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    d = tmp_path_factory.mktemp("faults")
    (d / "faults_train.py").write_text(TRAIN)
    sys.path.insert(0, str(d))
    try:
        import faults_train
        faults_train.reference = faults_train.train()   # the uninterrupted run
        faults_train.folder = d
        yield faults_train
    finally:
        sys.path.remove(str(d)); sys.modules.pop("faults_train", None)


def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(mod, tmp_path):
    ck = tmp_path / "ck"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, str(mod.folder / "faults_train.py"), str(ck), "0.5"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target, t0 = ck / "ckpt-0001-000002.pt", time.time()   # epoch 2 (of 2), after its 2nd of 4 steps
    while not target.exists():
        assert p.poll() is None, p.stderr.read().decode()[-3000:]
        assert time.time() - t0 < 300, "no mid-epoch checkpoint after 300 s"
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    names = sorted(q.name for q in ck.iterdir() if q.name.startswith("ckpt-"))
    assert "ckpt-0002-000000.pt" not in names and names[-1].startswith("ckpt-0001-")   # really killed inside epoch 2
    model, h = mod.train(ck, resume=True)
    ref_model, ref_h = mod.reference
    assert same_weights(model, ref_model)
    assert strip(h) == strip(ref_h)


def test_truncated_newest_checkpoint_falls_back_to_previous(mod, tmp_path):
    ck = tmp_path / "ck"
    mod.train(ck)
    names = sorted(q.name for q in ck.iterdir())
    assert names == ["ckpt-0001-000002.pt", "ckpt-0002-000000.pt"]   # the newest two are kept
    newest = ck / names[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 3])   # a torn write / bad disk
    with pytest.warns(UserWarning, match=r"ckpt-0002-000000.pt is unreadable.*resuming from the previous checkpoint, "
                                         r"ckpt-0001-000002.pt"):
        model, h = mod.train(ck, resume=True)
    ref_model, ref_h = mod.reference
    assert same_weights(model, ref_model) and strip(h) == strip(ref_h)


def test_pickled_callable_is_refused(tmp_path):
    from sftkd_edu.train import CheckpointError, load_checkpoint
    p = tmp_path / "ckpt-0001-000000.pt"
    torch.save({"format": "sftkd_edu.checkpoint", "hook": os.system}, p)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(p)


def sftkd(*args, cwd):
    return subprocess.Popen([str(Path(sys.executable).parent / "sftkd"), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_sweep_leaves_no_process_and_reruns_only_missing_runs(tmp_path):
    """SIGKILL of `sftkd sweep --workers 2`: no worker or kernel survives it, nothing is written after it; the rerun
    does only the rest."""
    import psutil  # installed with ipykernel
    (tmp_path / "s.yaml").write_text(
        "base: {n_train: 200, n_test: 100, teacher: resnet8, teacher_epochs: 1, student_epochs: 1, progress: false}\n"
        "grid: {method: [kd, at, sp]}\nout: g\n")
    p = sftkd("sweep", "s.yaml", "--quiet", "--workers", "2", cwd=tmp_path)
    runs, t0 = tmp_path / "g" / "runs", time.time()
    while not list(runs.glob("*/record.json")):
        assert p.poll() is None, p.stderr.read()[-3000:]
        assert time.time() - t0 < 600
        time.sleep(0.2)
    children = psutil.Process(p.pid).children(recursive=True)   # the pool's workers and their kernels
    assert len(children) >= 2, children
    p.send_signal(signal.SIGKILL); p.wait(); killed = time.time()
    done = {q: q.stat().st_mtime for q in runs.glob("*/record.json")}
    assert all(json.loads(q.read_text())["status"] == "ok" for q in done)   # whole records, never half of one
    time.sleep(10)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [(c.pid, c.cmdline()[:3]) for c in alive]
    # A kernel notices its worker's death within a second (ipykernel polls its parent once a second), so a run whose
    # last
    # cell was already writing may still land, whole, in that second; nothing is written later than that.
    late = [q for q in runs.glob("*/record.json") if q.stat().st_mtime > killed + 2.0]
    assert late == [], late
    done = {q: q.stat().st_mtime for q in runs.glob("*/record.json")}
    assert all(json.loads(q.read_text())["status"] == "ok" for q in done)
    r = subprocess.run([str(Path(sys.executable).parent / "sftkd"), "sweep", "s.yaml", "--quiet"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(q.stat().st_mtime == m for q, m in done.items())                # the finished runs were not run again
    recs = [json.loads(q.read_text()) for q in runs.glob("*/record.json")]
    assert len(recs) == 3 and all(x["status"] == "ok" for x in recs)


TINY_SWEEP = ("base: {n_train: 200, n_test: 100, teacher: resnet8, teacher_epochs: 1, student_epochs: 1, progress: "
              "false}\n"
              "grid: {method: [kd, at, sp, fitnet]}\nout: g\n")


def kernels_of(p):
    "The ipykernel processes a sweep started (in its run processes)."
    import psutil
    try: return [c for c in psutil.Process(p.pid).children(recursive=True) if "ipykernel" in " ".join(c.cmdline())]
    except psutil.NoSuchProcess: return []


def wait_for(cond, p, limit=600):
    t0 = time.time()
    while not cond():
        assert p.poll() is None, p.stderr.read()[-3000:]
        assert time.time() - t0 < limit
        time.sleep(0.2)


def test_ctrl_c_stops_a_sweep_marks_running_runs_interrupted_and_rerun_finishes(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) of `sftkd sweep --workers 2`: exit 130, running runs interrupted,
    queued ones not started, no process left; the rerun does only those."""
    import psutil
    (tmp_path / "s.yaml").write_text(TINY_SWEEP)
    # a terminal's Ctrl-C goes to its whole foreground process group: here the sweep leads a group of its own
    # and Ctrl-C acts there: a shell starting a background job without job control (`nohup bash .ci/run &`) makes its
    # children ignore SIGINT, and an ignored SIGINT is inherited, so the sweep gets the terminal's default back
    p = subprocess.Popen([str(Path(sys.executable).parent / "sftkd"), "sweep", "s.yaml", "--quiet", "--workers", "2"],
                         cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: len(kernels_of(p)) >= 2, p)
    children = psutil.Process(p.pid).children(recursive=True)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-3000:]
    states = {q.parent.name: json.loads(q.read_text())["status"]
              for q in (tmp_path / "g" / "runs").glob("*/record.json")}
    assert "failed" not in states.values() and list(states.values()).count("interrupted") >= 1, states
    assert len(states) < 4, states   # the queued runs did not start
    time.sleep(3)
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [(c.pid, c.cmdline()[:3]) for c in alive]
    ok_before = {q: q.stat().st_mtime for q in (tmp_path / "g" / "runs").glob("*/record.json")
                 if json.loads(q.read_text())["status"] == "ok"}
    r = subprocess.run([str(Path(sys.executable).parent / "sftkd"), "sweep", "s.yaml", "--quiet", "--workers", "2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(q.stat().st_mtime == m for q, m in ok_before.items())   # finished runs not run again
    recs = [json.loads(q.read_text()) for q in (tmp_path / "g" / "runs").glob("*/record.json")]
    assert len(recs) == 4 and all(x["status"] == "ok" for x in recs)


def test_a_killed_kernel_and_a_killed_run_process_are_two_failed_runs(tmp_path):
    """SIGKILL of one run's kernel (as the OOM killer does) and of another run's process: each a failed record naming
    the cause; the rest finish, the report is written."""
    (tmp_path / "s.yaml").write_text(TINY_SWEEP)
    p = subprocess.Popen([str(Path(sys.executable).parent / "sftkd"), "sweep", "s.yaml", "--quiet", "--workers", "2"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(kernels_of(p)) >= 2, p)
    k1, k2 = kernels_of(p)[:2]
    k1.kill()                # one run's kernel
    k2.parent().kill()       # another run's process (its kernel follows it)
    _, err = p.communicate(timeout=900)
    assert p.returncode == 1 and "Traceback" not in err, err[-3000:]   # 1: some runs failed
    recs = [json.loads(q.read_text()) for q in (tmp_path / "g" / "runs").glob("*/record.json")]
    failed = sorted(r["error"] for r in recs if r["status"] == "failed")
    assert len(recs) == 4 and len(failed) == 2, [(r["status"], r.get("error")) for r in recs]
    assert any("kernel died" in e for e in failed) and any("killed by SIGKILL" in e for e in failed), failed
    assert (tmp_path / "g" / "report.html").is_file()
