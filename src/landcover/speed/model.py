"""Training and inference throughput per backbone on synthetic tensors (the compute ceiling).

    python src/benchmarks/speed.py model                      # CPU, every model config
    python src/benchmarks/speed.py model --device cuda --batch 64 --size 256

Training: forward + backward + AdamW step on random (batch, 4, size, size) inputs; inference:
forward of whole 256x256 patches. On CUDA both run in bf16 autocast. Tensors are channels-last,
as the trainer's are on any device (``run.channels_last``); ``--layouts
channels_last,contiguous`` measures both, one after the other for each model, side by side.
Prints images per second after warm-up steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from landcover.config import CONFIG_DIR, load_config
from landcover.members import member_for
from landcover.runtime import autocast, to_layout
from landcover.speed.rates import sync

LAYOUTS = ("channels_last", "contiguous")


def layouts(text: str) -> list[str]:
    """An argparse type: comma-separated names from ``LAYOUTS``."""
    chosen = text.split(",")
    if unknown := [x for x in chosen if x not in LAYOUTS]:
        raise argparse.ArgumentTypeError(f"unknown {unknown}, choose from {list(LAYOUTS)}")
    return chosen


def measure(
    name: str, device: torch.device, batch: int, size: int, steps: int, layout: str
) -> tuple[float, float]:
    """Built, laid out and autocast as the trainer does (``NetworkMember.prepare``,
    ``runtime.to_layout``, ``runtime.autocast``), under ``run.channels_last`` for ``layout``."""
    config = load_config(name, overrides={"run": {"channels_last": layout == "channels_last"}})
    run_cfg = config["run"]
    model = member_for(config).prepare(device)
    optimizer = torch.optim.AdamW(model.parameters())
    x = to_layout(torch.randn(batch, 4, size, size, device=device), run_cfg)
    model.train()
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            sync(device)
            started = time.perf_counter()
        with autocast(device, run_cfg):
            loss = model(x).float().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    sync(device)
    train = batch * steps / (time.perf_counter() - started)
    model.eval()
    patches = to_layout(torch.randn(batch, 4, 256, 256, device=device), run_cfg)
    with torch.no_grad():
        for step in range(steps + 1):
            if step == 1:
                sync(device)
                started = time.perf_counter()
            with autocast(device, run_cfg):
                model(patches)
    sync(device)
    return train, batch * steps / (time.perf_counter() - started)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", help="comma-separated model configs (default: all)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="training crop size")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: default)")
    parser.add_argument(
        "--layouts",
        type=layouts,
        default="channels_last",
        help="comma-separated: channels_last, contiguous",
    )


def run(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = (
        args.models.split(",")
        if args.models
        else sorted(
            p.stem
            for p in (CONFIG_DIR / "models").glob("*.yaml")
            if member_for(load_config(p.stem)).is_network
        )
    )
    print(
        f"device {device}, batch {args.batch}, training crops {args.size}px, threads "
        f"{torch.get_num_threads()}"
    )
    print(f"{'model':24s} {'layout':14s} {'train img/s':>12s} {'infer img/s (256px)':>20s}")
    for name in names:
        for layout in args.layouts:
            train, infer = measure(name, device, args.batch, args.size, args.steps, layout)
            print(f"{name:24s} {layout:14s} {train:12.1f} {infer:20.1f}", flush=True)
