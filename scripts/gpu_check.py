"""Device check: the quickstart pipeline with device="auto" on a CUDA machine (run: PYTHONPATH=. python scripts/gpu_check.py).

Prints one JSON line per arm with accuracy and wall time, and throughput of fp32 vs bf16 teacher steps."""
import json
import time

import torch

from sftkd_edu.data import load_dataset
from sftkd_edu.models import create_model
from sftkd_edu.teachers import teacher_objective, train_teacher
from sftkd_edu.train import Distillation, Supervised, fit, resolve_device, set_seed

dev = resolve_device("auto")
print(json.dumps({"device": str(dev), "name": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                  "torch": torch.__version__}), flush=True)
data = load_dataset("digits100", n_train=5000, n_test=2000, seed=0)
kw = dict(progress=False, device="auto")
res, t0 = {}, time.perf_counter()
from sftkd_edu.objective import History

t_std, i_std = train_teacher("standard", data, "resnet20", epochs=10, **kw)
res["standard teacher"] = History.from_dict(i_std["history"])
sftn, i_sftn = train_teacher("sftn", data, "resnet20", "resnet8", epochs=10, **kw)
res["SFTN teacher"] = History.from_dict(i_sftn["history"])
for arm, mk in [("student alone", Supervised), ("KD ← standard", lambda s: Distillation(s, t_std)),
                ("KD ← SFTN", lambda s: Distillation(s, sftn))]:
    set_seed(0); s = create_model("resnet8", in_chans=1); res[arm] = fit(mk(s), data, epochs=10, **kw)
for k, h in res.items():
    print(json.dumps({"arm": k, "acc_last": round(h.last["test_acc"], 2), "acc_best": round(h.best(), 2),
                      "time_s": round(sum(h["time_s"]), 1), "images_per_s": round(h.last["images_per_s"])}), flush=True)
print(json.dumps({"quickstart_pipeline_s": round(time.perf_counter() - t0, 1)}), flush=True)
# at lr 0.05 the SFTN run below diverged (NaN at step 18, caught by fit's non-finite check) on an H200 in fp32;
# throughput at CIFAR scale: resnet32x4 teacher with resnet8x4 branches, batch 64, 3x32x32 synthetic data
big = load_dataset("digits100", n_train=4096, n_test=200, image_size=32)
big.train.images = big.train.images.expand(-1, 3, -1, -1).contiguous()
big.test.images = big.test.images.expand(-1, 3, -1, -1).contiguous()
big.in_chans = 3
for prec, cl in [("fp32", False), ("bf16", True)]:
    for nm, mk in [("standard", lambda: Supervised(create_model("resnet32x4"))),
                   ("sftn", lambda: teacher_objective("sftn", create_model("resnet32x4"), "resnet8x4", 32))]:
        set_seed(0)
        h = fit(mk(), big, epochs=2, lr=0.01, precision=prec, channels_last=cl, **kw)   # lr 0.01: throughput only
        print(json.dumps({"step": nm, "precision": prec, "channels_last": cl,
                          "images_per_s": round(h.last["images_per_s"])}), flush=True)
