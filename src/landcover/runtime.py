"""Where a network runs: the device, seeding, mixed precision and memory layout."""

from __future__ import annotations

import random
from contextlib import nullcontext

import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"run.device {name!r} is not a device (auto, cpu, cuda, cuda:1)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"run.device is {name!r} but no CUDA GPU is available here: use a CPU profile "
            "(sample-cpu) or --set run.device=cpu"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed Python and torch (NumPy randomness uses explicit, seeded generators)."""
    random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, run_cfg: dict):
    """bf16 autocast on CUDA when ``run.amp``; nothing on the CPU."""
    if device.type == "cuda" and run_cfg["amp"]:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def to_layout(x: torch.Tensor, run_cfg: dict) -> torch.Tensor:
    """Channels-last when ``run.channels_last`` (on any device: the CPU's oneDNN convolutions
    are faster in it too), plain contiguous otherwise."""
    last = run_cfg["channels_last"]
    return x.contiguous(memory_format=torch.channels_last if last else torch.contiguous_format)
