"""Train a standard (or SFTN) teacher with the one `fit` loop, on one process or under torchrun.

    python examples/ddp_teacher.py                                   # one process (CPU or one GPU)
    torchrun --nproc_per_node=4 examples/ddp_teacher.py --sftn       # 4 GPUs: DDP, one process per GPU

`batch_size` is per process, so 4 processes with 64 take the steps one process with 256 would.
Only rank 0 writes checkpoints and shows progress; re-running the same command after a crash
resumes from the newest readable checkpoint in --ckpt.
"""
import argparse, os
from sftkd_edu.data import load_dataset
from sftkd_edu.teachers import train_teacher
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
# seed 0 on every process: the same initial weights everywhere (DDP also broadcasts rank 0's); the rest of the arguments go to fit
model, info = train_teacher("sftn" if a.sftn else "standard", data, a.teacher, a.student, a.epochs, seed=0, batch_size=a.batch_size,
                            checkpoint_dir=a.ckpt, resume=True, sync_bn=a.sync_bn)
if int(os.environ.get("RANK", 0)) == 0:   # one line, from the main process
    print(f"{'SFTN' if a.sftn else 'standard'} {a.teacher} teacher: {info['test_acc']:.2f}% test accuracy after {a.epochs} epochs")
cleanup_distributed()
