"""Where the KD step's time goes, fp32 against bf16 autocast: the frozen teacher's forward, the student's forward and
backward, the optimizer step — and, for comparison, a standard teacher step (forward + backward of the big network).

    OMP_NUM_THREADS=2 python scripts/profile_kd_step.py [--teacher resnet32x4 --student resnet8x4 --batch 64 --steps 5]
      [--channels-last] [--json profile_kd_step.json]

Issue "use the whole machine" asks why `sftkd bench` finds bf16 speeding the KD step up least. The step is
teacher forward (no grad) + student forward/backward + SGD; this times each part alone (median of `--steps` after 2
warm-up steps, synthetic CIFAR-sized data, the zoo's networks, one process) and prints a torch.profiler table of the
whole step's top operators per precision. Run it on an idle machine: it is a measurement, not a test.
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from sftkd_edu.distill import functional
from sftkd_edu.models import create_model
from sftkd_edu.runtime import cpu_bf16_supported

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--teacher", default="resnet32x4"); p.add_argument("--student", default="resnet8x4")
p.add_argument("--batch", type=int, default=64); p.add_argument("--steps", type=int, default=5)
p.add_argument("--channels-last", action="store_true"); p.add_argument("--json", default=None)
a = p.parse_args()
torch.manual_seed(0)
x, y = torch.randn(a.batch, 3, 32, 32), torch.randint(0, 100, (a.batch,))
if a.channels_last: x = x.contiguous(memory_format=torch.channels_last)

def nets():
    t, s = create_model(a.teacher, num_classes=100), create_model(a.student, num_classes=100)
    if a.channels_last: t, s = t.to(memory_format=torch.channels_last), s.to(memory_format=torch.channels_last)
    return t.eval().requires_grad_(False), s.train()

def timed(fn, n=a.steps, warm=2):
    for _ in range(warm): fn()
    ts = []
    for _ in range(n): t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1000

def ctx(prec):
    return torch.autocast("cpu", dtype=torch.bfloat16) if prec == "bf16" else torch.autocast("cpu", enabled=False)

rows, tables = {}, {}
precs = ["fp32"] + (["bf16"] if cpu_bf16_supported() else [])
for prec in precs:
    t, s = nets(); opt = torch.optim.SGD(s.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tt = create_model(a.teacher, num_classes=100).train()
    if a.channels_last: tt = tt.to(memory_format=torch.channels_last)
    topt = torch.optim.SGD(tt.parameters(), lr=0.01, momentum=0.9)
    with torch.no_grad(), ctx(prec): t_logits = t(x)
    def teacher_fwd():
        with torch.no_grad(), ctx(prec): return t(x)
    def student_fwd_bwd():
        with ctx(prec): z = s(x); loss = 0.1 * F.cross_entropy(z, y) + 0.9 * functional.kd(z, t_logits, 4.0)
        loss.backward(); s.zero_grad(set_to_none=True)
    def sgd(): opt.step()
    def kd_step():
        with torch.no_grad(), ctx(prec): tl = t(x)
        with ctx(prec): z = s(x); loss = 0.1 * F.cross_entropy(z, y) + 0.9 * functional.kd(z, tl, 4.0)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    def teacher_step():
        with ctx(prec): loss = F.cross_entropy(tt(x), y)
        topt.zero_grad(set_to_none=True); loss.backward(); topt.step()
    for _ in range(2): student_fwd_bwd()   # grads exist for the SGD timing
    with ctx(prec): z = s(x); (0.1 * F.cross_entropy(z, y)).backward()
    rows[prec] = {"teacher forward (no grad)": timed(teacher_fwd), "student forward + backward": timed(student_fwd_bwd),
                  "SGD step (student)": timed(sgd), "KD step (all of it)": timed(kd_step),
                  "standard teacher step (forward + backward + SGD)": timed(teacher_step)}
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2): kd_step()
    tables[prec] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)

print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
      f"cpu capability {torch.backends.cpu.get_cpu_capability()}, batch {a.batch}, {a.teacher} → {a.student}, "
      f"channels_last={a.channels_last}\n")
print("| part | " + " | ".join(f"{q} ms" for q in precs) + (" | fp32 / bf16 |" if len(precs) > 1 else " |"))
print("|---|" + "---|" * (len(precs) + (len(precs) > 1)))
for k in rows["fp32"]:
    v = [rows[q][k] for q in precs]
    print(f"| {k} | " + " | ".join(f"{u:.0f}" for u in v) + (f" | {v[0] / v[1]:.2f}× |" if len(v) > 1 else " |"))
for q in precs: print(f"\n### top operators of two KD steps, {q}\n{tables[q]}")
if a.json:
    json.dump({"args": vars(a), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "ms": rows}, open(a.json, "w"), indent=1)
