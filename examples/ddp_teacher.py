"""Train a standard (or SFTN) teacher with the one `fit` loop, on one process or under torchrun.

    python examples/ddp_teacher.py                                   # one process (CPU or one GPU)
    torchrun --nproc_per_node=4 examples/ddp_teacher.py --sftn       # 4 GPUs: DDP, one process per GPU

`batch_size` is per process, so 4 processes with 64 take the steps one process with 256 would.
Only rank 0 writes checkpoints and shows progress; re-running the same command after a crash
resumes from the newest readable checkpoint in --ckpt.
"""
import argparse
from sftkd_edu.data import load_dataset
from sftkd_edu.models import create_model
from sftkd_edu.sftn import SFTNTeacher
from sftkd_edu.train import fit, set_seed, Supervised, SFTNObjective
from sftkd_edu.distributed import cleanup_distributed

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="digits100")
p.add_argument("--teacher", default="resnet20")
p.add_argument("--student", default="resnet8", help="branch architecture with --sftn")
p.add_argument("--sftn", action="store_true", help="train an SFTN teacher (with student branches)")
p.add_argument("--epochs", type=int, default=8)
p.add_argument("--batch-size", type=int, default=64, help="per process")
p.add_argument("--ckpt", default="ckpt_teacher", help="checkpoint folder")
p.add_argument("--sync-bn", action="store_true", help="BatchNorm statistics over the global batch (GPUs only)")
a = p.parse_args()

data = load_dataset(a.dataset)
set_seed(0)   # the same initial weights on every process (DDP also broadcasts rank 0's)
model = create_model(a.teacher, num_classes=data.num_classes, in_chans=data.in_chans)
obj = SFTNObjective(SFTNTeacher(model, a.student, image_size=data.image_size)) if a.sftn else Supervised(model)
h = fit(obj, data, epochs=a.epochs, batch_size=a.batch_size, checkpoint_dir=a.ckpt, resume=True, sync_bn=a.sync_bn)
print(h)
cleanup_distributed()
