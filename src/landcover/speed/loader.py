"""Is the data path the bottleneck? Training patches/s fed by the real batch builder, against
the same training step on a batch already on the device (the ceiling).

    python src/benchmarks/speed.py loader --data ../shared/data/landcover-sample
    python src/benchmarks/speed.py loader --data DIR --device cuda --batch 64 --crop 0 \\
        --models unet_resnet18,fpn_efficientnet_b0,unet_convnext_atto,classifier_resnet18

Per model (on CUDA the batch builder keeps the training patches on the GPU):

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

import torch

from landcover.cache import prepare_data
from landcover.cli import add_set
from landcover.config import load_config
from landcover.speed.rates import Bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data folder in the official layout")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="unet_regnety_002,classifier_resnet18")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128, help="training crop (0: whole patch)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    add_set(
        parser,
        "config overrides for every model, e.g. "
        "'augment.albumentations=[{name: GaussNoise, p: 0.5}]'",
    )
    parser.add_argument(
        "--sync-debug",
        action="store_true",
        help="CUDA: warn at every implicit host-GPU synchronisation (there should be none "
        "inside a training step or a batch)",
    )


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.sync_debug:
        torch.cuda.set_sync_debug_mode("warn")
    device = torch.device(args.device)
    data = prepare_data(args.data)
    print(
        f"device {device}, batch {args.batch}, crop {args.crop or 'whole patch'}, "
        f"{len(data.train_ids)} training patches, threads {torch.get_num_threads()}"
    )
    header = ("model", "data only", "train real", "train synthetic", "ratio")
    print(f"{header[0]:22s}" + "".join(f"{h:>16s}" for h in header[1:]))
    for name in args.models.split(","):
        overrides = [
            f"train.batch_size={args.batch}",
            f"train.crop={args.crop}",
            f"run.device={args.device}",
            *args.set,
        ]
        config = load_config(name, overrides=overrides)
        bench = Bench(config, data, device)
        got = [
            bench.data_rate(args.steps, args.warmup),
            bench.train_rate(args.steps, args.warmup),
            bench.train_rate(args.steps, args.warmup, synthetic=True),
        ]
        print(
            f"{name:22s}" + "".join(f"{v:16.1f}" for v in got) + f"{got[1] / got[2]:16.3f}",
            flush=True,
        )
