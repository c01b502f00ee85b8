"""Grids on distributed engines: a Dask LocalCluster that loses a worker mid-run, submitit's local executor — each
against the same grid run in the local process pool (the engines are the `cluster` extra: skipped without it)."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from sftkd_edu.experiments import grid_report, load_runs, run_grid, summarize
from sftkd_edu.records import RECORD

TINY = dict(n_train=200, n_test=100, teacher="resnet8", teacher_epochs=3, student_epochs=2, progress=False)
GRID = {"teacher_kind": ["standard", "sftn"], "method": ["kd", "fitnet"]}   # 4 runs, 2 teachers


@pytest.fixture(scope="module", autouse=True)
def one_thread_per_run():
    """Every kernel of every engine computes with one thread: the same arithmetic, so the engines' results can be
    compared exactly."""
    old = os.environ.get("OMP_NUM_THREADS"); os.environ["OMP_NUM_THREADS"] = "1"
    yield
    if old is None: os.environ.pop("OMP_NUM_THREADS")
    else: os.environ["OMP_NUM_THREADS"] = old


def students(out):
    """`{run id: student accuracy}` of a finished grid, after checking that every run ended with one whole record and
    nothing half-written."""
    ok, bad = load_runs(out)
    assert bad == [] and len(ok) == 4, (len(ok), bad)
    for d in Path(out, "runs").iterdir():
        assert (d / RECORD).is_file() and not list(d.glob(".*.tmp")), sorted(p.name for p in d.iterdir())
    return {r["run_id"]: r["student"]["test_acc_last"] for r in ok}


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "g"
    assert set(run_grid("07_experiment", GRID, out, base=TINY, workers=2, progress=False).values()) == {"ok"}
    return out


def test_local_pool_shares_the_cores(local_grid):
    """Two workers in the local pool: each run's kernel computed with the threads it was given (here the OMP_NUM_THREADS
    this module sets, which a grid keeps; without it, its share of the cores), and its record says so."""
    want = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS") else max(1, len(os.sched_getaffinity(0)) // 2)
    got = {json.loads(p.read_text())["versions"]["cpu_threads"] for p in Path(local_grid, "runs").glob("*/record.json")}
    assert got == {want}, (got, want)


def test_dask_grid_survives_a_lost_worker(tmp_path, local_grid):
    pytest.importorskip("distributed")
    from sftkd_edu.grids import dask_local_cluster
    out, killed, while_running = tmp_path / "g", [], []
    client = dask_local_cluster(2)
    try:
        pids = client.run(os.getpid)   # {worker address: its process}
        # loopback only, over TLS: nothing off this machine, nor a local process without the certificate, reaches it
        assert client.scheduler.address.startswith("tls://127.0.0.1:"), client.scheduler.address
        assert all(a.startswith("tls://127.0.0.1:") for a in pids), list(pids)
        def kill_a_busy_worker():   # once a run has been going for a few seconds, SIGKILL the worker running it
            deadline = time.time() + 300
            while time.time() < deadline and not (out / "runs").is_dir(): time.sleep(0.2)
            time.sleep(4)
            busy = [a for a, keys in client.processing().items() if keys]
            if busy: killed.append(busy[0]); os.kill(pids[busy[0]], signal.SIGKILL)
            # `sftkd report` on a grid still running: once some runs are done
            while time.time() < deadline and not while_running:
                n = len(load_runs(out)[0])
                if n >= 4: break   # all done before a report could be taken: the assertion below says so
                if n >= 1: while_running.append((grid_report(out).is_file(), summarize(out)["n_ok"]))
                time.sleep(0.3)
        t = threading.Thread(target=kill_a_busy_worker); t.start()
        states = run_grid("07_experiment", GRID, out, base=TINY, executor=client, progress=False)
        t.join()
    finally: client.close()
    assert killed, "no run was in progress to kill"
    # a report of the runs finished so far
    assert while_running and while_running[0][0] and 1 <= while_running[0][1] < 4, while_running
    assert set(states.values()) == {"ok"}, states
    assert students(out) == students(local_grid)   # the lost run ran again, to the same result
    ok, _ = load_runs(out)
    trained = {}
    for r in ok: trained.setdefault(r["teacher"]["key"], []).append(r["teacher"]["cached"])
    assert len(trained) == 2 and all(v.count(False) == 1
                                     for v in trained.values()), trained   # each teacher trained once
    assert len(list((out / "teachers").glob("*.safetensors"))) == 2


def test_submitit_local_executor(tmp_path, local_grid):
    submitit = pytest.importorskip("submitit")
    ex = submitit.LocalExecutor(folder=str(tmp_path / "jobs")); ex.update_parameters(timeout_min=15)
    states = run_grid("07_experiment", GRID, tmp_path / "g", base=TINY, executor=ex, progress=False)
    assert set(states.values()) == {"ok"}, states
    assert students(tmp_path / "g") == students(local_grid)
