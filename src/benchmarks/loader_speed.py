"""Is the data path the bottleneck? Training patches/s fed by the real batch builder, against
the same training step on synthetic tensors already on the device (the ceiling).

    python src/benchmarks/loader_speed.py --data ../shared/data/landcover-sample
    python src/benchmarks/loader_speed.py --data DIR --device cuda --batch 64 --crop 0 \\
        --models unet_resnet18,fpn_efficientnet_b0,unet_convnext_atto,classifier_resnet18

Per model and batch backend (``augment.backend``; the tensor backend with the training
patches resident on the GPU when on CUDA):

- ``data only``: patches/s the batch builder delivers (crop, flip/rotation, jitter,
  normalisation, targets), nothing else;
- ``train real``: patches/s of ``trainer.train_step`` fed by it, as ``fit`` runs it;
- ``train synthetic``: the same step on one pre-built batch already on the device;
- ``ratio``: real / synthetic (1.0 = the data path costs nothing).

Both training figures use the experiment's own config (model, loss, bf16 and channels-last
on CUDA), so they measure exactly what training does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.batches import training_batches
from landcover.cache import prepare_data
from landcover.config import load_config
from landcover.dataset import fit_normalizer
from landcover.losses import class_weights
from landcover.trainer import build_optimizer, prepare_model, train_step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(batches, steps: int, warmup: int, device: torch.device, work=None) -> float:
    """Patches/s over ``steps`` batches after ``warmup`` ones; ``work(batch)`` per batch."""
    done, n = 0, 0
    for batch in batches:
        if done == warmup:
            _sync(device)
            started = time.perf_counter()
        if work is not None:
            work(batch)
        done += 1
        if done > warmup:
            n += len(batch["target"])
    _sync(device)
    return n / (time.perf_counter() - started)


def measure(config: dict, data, device: torch.device, steps: int, warmup: int) -> dict:
    rows = np.arange(len(data.train_ids))
    normalizer = fit_normalizer(data.train_images, rows, log=config["normalize"]["log"])
    batches = training_batches(
        config, data.train_images, data.train_masks, rows, normalizer, device, seed=0
    )
    total = steps + warmup
    out = {"data only": _rate(batches.epoch(total), steps, warmup, device)}
    torch.manual_seed(0)
    model = prepare_model(config, device).train()
    optimizer = build_optimizer(config, model)
    weights = class_weights(data.train_masks, config["loss"]["class_weights"], rows=rows)

    def step(batch: dict) -> None:
        train_step(model, batch, optimizer, config, weights, device)

    out["train real"] = _rate(batches.epoch(total), steps, warmup, device, step)
    fixed = next(batches.epoch(1))
    out["train synthetic"] = _rate((fixed for _ in range(total)), steps, warmup, device, step)
    out["ratio"] = out["train real"] / out["train synthetic"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", required=True, help="data folder in the official layout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="unet_regnety_002,classifier_resnet18")
    parser.add_argument("--backends", default="tensor,albumentations")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128, help="training crop (0: whole patch)")
    parser.add_argument("--workers", type=int, default=0, help="albumentations loader processes")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = prepare_data(args.data)
    print(
        f"device {device}, batch {args.batch}, crop {args.crop or 'whole patch'}, "
        f"{len(data.train_ids)} training patches, threads {torch.get_num_threads()}, "
        f"albumentations workers {args.workers}"
    )
    header = ("model", "backend", "data only", "train real", "train synthetic", "ratio")
    print(f"{header[0]:22s} {header[1]:15s}" + "".join(f"{h:>16s}" for h in header[2:]))
    for name in args.models.split(","):
        for backend in args.backends.split(","):
            config = load_config(
                name,
                overrides={
                    "augment": {"backend": backend},
                    "train": {"batch_size": args.batch, "crop": args.crop},
                    "run": {"device": args.device, "num_workers": args.workers},
                },
            )
            got = measure(config, data, device, args.steps, args.warmup)
            print(
                f"{name:22s} {backend:15s}"
                + "".join(f"{got[k]:16.1f}" for k in header[2:5])
                + f"{got['ratio']:16.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
