"""Calibration of the `digits100-bench` regime: for each candidate (data, teacher → student, epochs), seed 0, fp32, one
thread — a standard teacher, the student alone and the KD student (T = 4, CE and KD weights 1) — through the public API.

    OMP_NUM_THREADS=1 python scripts/bench_calibration.py run studies/calibration C G   # candidates by key; finished: skipped
    python scripts/bench_calibration.py table studies/calibration                       # the table in nbs/12_results.ipynb

One JSON per candidate (written atomically), holding every arm's per-epoch accuracy on a validation split carved from the
training images (`sftkd_edu.data.validation_split`, 10 %): a choice made here never looks at the test split, which is
kept for the final tables. The candidates B, C, G, H and I in studies/calibration were measured before the validation
split existed, on the test split; their JSON says so ("split": absent = "test")."""
import json
import os
import sys
import time
from pathlib import Path

import torch

from sftkd_edu.data import load_dataset, validation_split
from sftkd_edu.models import create_model
from sftkd_edu.train import Distillation, Supervised, device_name, fit, set_seed

CANDIDATES = {   # key: (teacher, student, digits100 options, epochs)
    "G": ("resnet20", "resnet8", {"n_train": 5000, "distort": 1.0}, 30),
    "C": ("resnet20", "resnet8x0.5", {"n_train": 5000, "distort": 1.0}, 30),
    "B": ("resnet56", "resnet8x0.5", {"n_train": 5000, "distort": 1.0}, 30),
    "H": ("resnet20", "resnet8x0.25", {"n_train": 5000, "distort": 1.0}, 30),
    "I": ("resnet20", "resnet8x0.5", {"n_train": 5000}, 30),
}


def run(key, out:Path, seed:int=0):
    path = out / f"{key}.json"
    if path.exists(): return
    teacher, student, opts, epochs = CANDIDATES[key]
    data = validation_split(load_dataset("digits100", n_test=2000, seed=seed, **opts), 0.1, seed=seed)
    kw = dict(epochs=epochs, precision="fp32", progress=False, seed=seed)
    res = {"key": key, "teacher": teacher, "student": student, "data": opts, "epochs": epochs, "seed": seed,
           "precision": "fp32", "device_name": device_name("cpu"), "split": "validation", "acc": {}, "time_s": {}}
    set_seed(seed); t = create_model(teacher, num_classes=100, in_chans=1)
    for arm, make in (("teacher", lambda: Supervised(t)),
                      ("alone", lambda: Supervised(create_model(student, num_classes=100, in_chans=1))),
                      ("kd", lambda: Distillation(create_model(student, num_classes=100, in_chans=1), t,
                                                  "kd", ce_weight=1.0, kd_weight=1.0))):
        set_seed(seed); t0 = time.perf_counter()
        h = fit(make(), data, name=arm, **kw)
        res["acc"][arm], res["time_s"][arm] = h["test_acc"], time.perf_counter() - t0
    tmp = path.with_suffix(".tmp"); tmp.write_text(json.dumps(res)); os.replace(tmp, path)


def table(out:Path):
    rows = ["| key | data | teacher → student | epochs | teacher | student alone | KD student | gap (teacher − alone) "
            "| KD − alone "
            "| largest change over the last fifth (teacher / alone / KD) | teacher train time (s) | measured on |",
            "|" + "---|" * 12]
    for p in sorted(out.glob("*.json"), key=lambda p: list(CANDIDATES).index(p.stem) if p.stem in CANDIDATES else 99):
        r = json.loads(p.read_text()); a = r["acc"]
        last = lambda h: h[-1]
        drift = lambda h: max(abs(a - h[-1])
                              for a in h[-(len(h) // 5) - 1:])   # the last fifth of epochs vs the final one
        data = ", ".join(f"{k}={v}" for k, v in r["data"].items())
        rows.append(f"| {r['key']} | {data} | {r['teacher']} → {r['student']} | {r['epochs']} | "
                    f"{last(a['teacher']):.1f} | {last(a['alone']):.1f} "
                    f"| {last(a['kd']):.1f} | {last(a['teacher']) - last(a['alone']):.1f} | "
                    f"{last(a['kd']) - last(a['alone']):+.1f} "
                    f"| {drift(a['teacher']):.2f} / {drift(a['alone']):.2f} / {drift(a['kd']):.2f} | "
                    f"{r['time_s']['teacher']:.0f} "
                    f"| {r.get('split', 'test')} split |")
    return "\n".join(rows)


if __name__ == "__main__":
    cmd, out = sys.argv[1], Path(sys.argv[2])
    if cmd == "run":
        torch.set_num_threads(1); out.mkdir(parents=True, exist_ok=True)
        for key in sys.argv[3:] or CANDIDATES:
            if key not in CANDIDATES: sys.exit(f"unknown candidate {key!r}; valid: {list(CANDIDATES)}")
            run(key, out)
    elif cmd == "table": print(table(out))
    else: sys.exit("usage: bench_calibration.py run|table FOLDER [KEYS…]")
