"""`fit` under torchrun: 2 CPU processes (gloo) match 1 process with the same global batch."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent('''
    import sys, json, torch
    from torch import nn
    from sftkd_edu.data import load_dataset
    from sftkd_edu.train import fit, set_seed, Supervised, list_checkpoints
    from sftkd_edu.distributed import cleanup_distributed
    out, batch_size = sys.argv[1], int(sys.argv[2])
    data = load_dataset("digits100", n_train=200, n_test=100)
    for ds in (data.train, data.test): ds.images = ds.images.double()   # float64 end to end: see the tolerance below
    torch.set_default_dtype(torch.float64)
    set_seed(0)   # BatchNorm-free: on CPU torch's SyncBatchNorm is unavailable, and per-process BN would differ by design
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, 100))
    h = fit(Supervised(net), data, epochs=2, lr=0.1, batch_size=batch_size, device="cpu", progress=False,
            checkpoint_dir=out + "_ck")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if rank == 0:
        torch.save(net.state_dict(), out + ".pt")
        json.dump([{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in h.records],
                  open(out + ".json", "w"))
    cleanup_distributed()
''')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_two_processes_match_one(tmp_path):
    (tmp_path / "ddp_script.py").write_text(SCRIPT)
    run([sys.executable, "ddp_script.py", str(tmp_path / "one"), "32"], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         "ddp_script.py", str(tmp_path / "two"), "16"], tmp_path)
    one, two = torch.load(tmp_path / "one.pt", weights_only=True), torch.load(tmp_path / "two.pt", weights_only=True)
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    print(f"max |w_1proc - w_2proc| = {diff:.3g}")
    # The run is float64: the all-reduce sums the two halves' gradients in another order than one process does, which
    # costs ~1e-16 relative per step (in float32 it was 5.6e-8 on an AVX2 CPU and 6e-5 on an AVX512 one, so no float32
    # tolerance is portable). 1e-9 is far above float64 rounding after 2 epochs and far below any real difference:
    # 1 process with batch 16 instead of 32, or another data order, ends 2e-2–4e-2 away.
    assert all(one[k].dtype == torch.float64 for k in one)
    assert all(torch.allclose(one[k], two[k], atol=1e-9, rtol=0) for k in one), diff
    h1, h2 = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert [r["test_acc"] for r in h1] == [r["test_acc"] for r in h2]
    for a, b in zip(h1, h2):
        # the logged loss is averaged in float32 (`fit`'s sums): 1e-6 ≈ 10 ulps at ~1
        assert abs(a["loss"] - b["loss"]) < 1e-6
    # only rank 0 wrote checkpoints, and they hold the 2-process history
    cks = sorted((tmp_path / "two_ck").iterdir())
    assert [p.name for p in cks] == ["ckpt-0001-000000.pt", "ckpt-0002-000000.pt"]
    ck = torch.load(cks[-1], weights_only=True)
    assert ck["config"]["world_size"] == 2 and len(ck["history"]["records"]) == 2


def test_example_ddp_teacher_trains_and_resumes(tmp_path):
    """examples/ddp_teacher.py (an SFTN teacher through `train_teacher`) under torchrun with 2 processes; run again, it
    resumes."""
    ex = Path(__file__).resolve().parents[1] / "examples" / "ddp_teacher.py"
    cmd = lambda: [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
                   str(ex), "--teacher", "resnet8", "--sftn", "--epochs", "1", "--batch-size", "32", "--ckpt", "ck"]
    r = run(cmd(), tmp_path)
    lines = [l for l in r.stdout.splitlines() if l.startswith("SFTN resnet8 teacher:")]
    # printed by the main process only
    assert len(lines) == 1 and lines[0].endswith("after 1 epochs"), r.stdout[-2000:]
    ckpts = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert ckpts == ["ckpt-0001-000000.pt"], ckpts                     # rank 0 alone wrote it
    # the same command again: resumes, nothing left to train
    r2 = run(cmd(), tmp_path)
    # resumed at the end: the same teacher, not retrained
    assert lines[0] in r2.stdout.splitlines(), (lines[0], r2.stdout[-2000:])
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ckpts


OBJ_SCRIPT = textwrap.dedent('''
    import sys, json, torch
    from sftkd_edu.data import load_dataset
    from sftkd_edu.models import create_model, batchnorm_to_groupnorm
    from sftkd_edu.sftn import SFTNTeacher
    from sftkd_edu.train import fit, set_seed, SFTNObjective, Distillation, Supervised
    from sftkd_edu.distributed import cleanup_distributed
    out, batch_size, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = load_dataset("digits100", n_train=128, n_test=100)
    for ds in (data.train, data.test): ds.images = ds.images.double()   # float64 end to end, as above
    torch.set_default_dtype(torch.float64)
    # GroupNorm instead of BatchNorm: per-sample, so a split batch normalises as the whole one (CPU has no SyncBatchNorm)
    set_seed(0)
    net = lambda arch: batchnorm_to_groupnorm(create_model(arch, num_classes=100, in_chans=1))
    teacher, student = net("resnet14"), net("resnet8")
    if kind == "sftn":   # its bridges are built here, with BatchNorm: converted too
        obj, trained = SFTNObjective(batchnorm_to_groupnorm(SFTNTeacher(teacher, student, image_size=data.image_size))), teacher
    elif kind == "files":   # a file-backed dataset stand-in: fit reads it through LoaderBatches, each process only its rows
        import dataclasses
        class Files(torch.utils.data.Dataset):
            def __init__(self, ds): self.ds, self.reads = ds, 0
            def __len__(self): return len(self.ds)
            def __getitem__(self, i): self.reads += 1; return self.ds.images[i], int(self.ds.labels[i])
        data = dataclasses.replace(data, train=Files(data.train)); obj, trained = Supervised(student), student
    elif kind == "soteacher":   # its per-image mean of past predictions: updated for the whole global batch on every process
        from sftkd_edu.teachers import SoTeacherLoss
        obj, trained = SoTeacherLoss(teacher), teacher
    else:
        obj, trained = Distillation(student, teacher, kind,
                                    **({"nce_k": 64, "image_size": data.image_size} if kind == "crd" else {})), student
    h = fit(obj, data, epochs=2, lr=0.05, batch_size=batch_size, device="cpu", progress=False)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    # CRD's banks, SoTeacher's p̄: identical on every process
    state = {k: v for k, v in obj.state_dict().items() if k.startswith("memory_") or k == "mean_pred"}
    if torch.distributed.is_initialized() and state:
        got = [None, None]; torch.distributed.all_gather_object(got, {k: v.tolist() for k, v in state.items()})
        assert got[0] == got[1], "the processes' memory banks (or mean predictions) differ"
    reads = [getattr(data.train, "reads", None)]
    if torch.distributed.is_initialized():
        reads = [None, None]; torch.distributed.all_gather_object(reads, getattr(data.train, "reads", None))
    if rank == 0:
        torch.save({**trained.state_dict(), **state}, out + ".pt")
        json.dump([{k: v for k, v in r.items() if k not in ("time_s", "images_per_s")} for r in h.records],
                  open(out + ".json", "w"))
        json.dump(reads, open(out + "_reads.json", "w"))
    cleanup_distributed()
''')


@pytest.mark.parametrize("kind", ["sftn", "kd", "crd", "soteacher", "files"])
def test_every_objective_two_processes_match_one(tmp_path, kind):
    """An SFTN teacher, KD, CRD (memory banks and negatives kept global: every process draws and updates for the whole
    batch) and SoTeacher (its per-image mean prediction kept global)."""
    (tmp_path / "obj_script.py").write_text(OBJ_SCRIPT)
    run([sys.executable, "obj_script.py", str(tmp_path / "one"), "32", kind], tmp_path)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         "obj_script.py", str(tmp_path / "two"), "16", kind], tmp_path)
    one, two = torch.load(tmp_path / "one.pt", weights_only=True), torch.load(tmp_path / "two.pt", weights_only=True)
    assert (sorted(one) == sorted(two) and (kind != "crd" or {"memory_s", "memory_t"} <= set(one))
            and (kind != "soteacher" or "mean_pred" in one))
    diff = max((one[k].double() - two[k].double()).abs().max().item() for k in one if one[k].is_floating_point())
    # float64, as in test_two_processes_match_one: 1e-9 is far above the all-reduce's reordering (~1e-16 per step) and
    # far below what a real difference (another batch, another data order, rank-local banks) leaves after 2 epochs
    assert diff < 1e-9, (kind, diff)
    h1, h2 = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    assert [r["test_acc"] for r in h1] == [r["test_acc"] for r in h2], (h1, h2)
    if kind == "files":   # 2 epochs of 4 batches of 32: one process reads 256 images, each of two reads its 128
        r1, r2 = json.loads((tmp_path / "one_reads.json").read_text()), json.loads((tmp_path / "two_reads.json").read_text())
        assert (r1, r2) == ([256], [128, 128]), (r1, r2)


MULTI_SCRIPT = textwrap.dedent('''
    import sys, json, torch
    from sftkd_edu.data import load_dataset
    from sftkd_edu.models import create_model
    from sftkd_edu.train import fit, set_seed
    from sftkd_edu.sftn_multi import MultiSFTNTeacher, MultiSFTNObjective
    from sftkd_edu.distributed import cleanup_distributed
    class Recorded(MultiSFTNObjective):
        def draw(self):
            i = super().draw(); self.drawn.append(i); return i
    data = load_dataset("digits100", n_train=256, n_test=100)
    set_seed(0)
    obj = Recorded(MultiSFTNTeacher(create_model("resnet8", num_classes=100, in_chans=1), ["resnet8x0.5", "resnet8"],
                                    image_size=data.image_size), mode="sampled", seed=7, diagnostics=False)
    obj.drawn = []
    fit(obj, data, epochs=1, batch_size=32, device="cpu", progress=False)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    params = {n: p.detach() for n, p in obj.sftn.named_parameters()}
    torch.save(params, f"{sys.argv[1]}_{rank}.pt")
    json.dump({"drawn": obj.drawn, "draws": int(obj.draws)}, open(f"{sys.argv[1]}_{rank}.json", "w"))
    cleanup_distributed()
''')


def test_multi_student_sampled_draws_agree(tmp_path):
    """A sampled multi-student teacher under torchrun: both processes draw the same student each step and end with the
    same weights."""
    (tmp_path / "multi.py").write_text(MULTI_SCRIPT)
    run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
         "multi.py", str(tmp_path / "m")], tmp_path)
    d0, d1 = (json.loads((tmp_path / f"m_{r}.json").read_text()) for r in (0, 1))
    # 256 images, a global batch of 2 × 32: 4 steps, each one draw on each process
    assert d0 == d1 and d0["draws"] == 4 and len(d0["drawn"]) == 4, (d0, d1)
    p0, p1 = (torch.load(tmp_path / f"m_{r}.pt", weights_only=True) for r in (0, 1))
    # the same all-reduced gradient applied to the same weights: the processes stay bit-identical
    assert all(torch.equal(p0[k], p1[k]) for k in p0), [k for k in p0 if not torch.equal(p0[k], p1[k])][:5]
