"""Build the small trained models the tutorials' demos start from (so a learner sees dark knowledge, branch agreement
and learning instead of an untrained network's uniform outputs), from the embedded data, on the CPU, in fp32:

- a standard `resnet14` teacher,
- an SFTN `resnet14` teacher with `resnet8` branches (the paper's recipe: λ_T 1, λ_KL 3, λ_CE 1, τ 1; its bridges and
  branches are kept, so the stepper opens a trained SFTN teacher),
- a `resnet8` student distilled from the SFTN teacher with KD (T 4, CE and KD weights 1),

each on digits100 (3,000 training and 1,000 test images, seed 0) for 20 epochs of the step schedule. Weights are stored
in fp16 (they are demos: a few hundred KB each) in `sftkd_edu/assets/`, with `demo_models.json` holding every model's test
accuracy, the command and the versions. `sftkd_edu.teachers.demo_model` loads them.

    OMP_NUM_THREADS=1 python scripts/build_demo_teachers.py          # about 10 minutes on one core of a 2-core CPU
"""
import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from sftkd_edu.data import load_dataset
from sftkd_edu.files import atomic_write
from sftkd_edu.models import create_model
from sftkd_edu.runner import versions
from sftkd_edu.teachers import DEMO_SETTINGS, teacher_objective
from sftkd_edu.train import Distillation, fit, set_seed

OUT = Path(__file__).resolve().parents[1] / "sftkd_edu" / "assets"


def save(name, module):
    weights = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in module.state_dict().items()}
    atomic_write(OUT / f"demo_{name}.safetensors", lambda tmp: save_file(weights, str(tmp)))


def main():
    s = DEMO_SETTINGS
    data = load_dataset("digits100", n_train=s["n_train"], n_test=s["n_test"], seed=s["seed"])
    kw = dict(epochs=s["epochs"], lr=0.05, seed=s["seed"], precision="fp32", progress=False)
    info, t0 = {"settings": s, "command": "OMP_NUM_THREADS=1 python scripts/build_demo_teachers.py",
                "versions": versions(), "models": {}}, time.perf_counter()
    for kind in ("standard", "sftn"):
        set_seed(s["seed"])
        obj = teacher_objective(kind, create_model(s["teacher"], num_classes=100, in_chans=1), s["student"],
                                data.image_size)
        h = fit(obj, data, name=f"{kind} teacher", **kw)
        save(kind, obj.sftn if kind == "sftn" else obj.model)
        info["models"][kind] = {k: round(v, 2) for k, v in h.last.items() if k.endswith("test_acc")}
        print(kind, info["models"][kind], f"{time.perf_counter() - t0:.0f} s", flush=True)
        if kind == "sftn": sftn = obj.sftn
    set_seed(s["seed"])
    stu = create_model(s["student"], num_classes=100, in_chans=1)
    h = fit(Distillation(stu, sftn, "kd", T=4.0, ce_weight=1.0, kd_weight=1.0), data, name="KD student", **kw)
    save("student", stu)
    info["models"]["student"] = {"test_acc": round(h.last["test_acc"], 2)}
    info["build_time_s"] = round(time.perf_counter() - t0)
    atomic_write(OUT / "demo_models.json", json.dumps(info, indent=1))
    print(json.dumps(info["models"]), f"{info['build_time_s']} s")


if __name__ == "__main__":
    sys.exit(main())
