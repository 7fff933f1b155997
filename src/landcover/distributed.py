"""One job on several processes (torchrun + DistributedDataParallel): who this process is,
which rows it predicts, and the one process that writes.

Outside torchrun everything here is the single-process case (rank 0 of 1), so the rest of the
code calls it unconditionally.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device_type: str) -> torch.device | None:
    """Join the process group torchrun describes (gloo on CPU, NCCL on GPUs); returns this
    rank's device (cuda:LOCAL_RANK on GPUs), or None outside torchrun."""
    if not launched():
        return None
    if not dist.is_initialized():
        cuda = device_type != "cpu" and torch.cuda.is_available()
        dist.init_process_group("nccl" if cuda else "gloo")
    if device_type != "cpu" and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_writer() -> bool:
    """Only rank 0 writes files."""
    return rank() == 0


def barrier() -> None:
    if world() > 1:
        dist.barrier()


def my_rows(rows: np.ndarray) -> np.ndarray:
    """This rank's share of ``rows`` (every world-th one)."""
    return np.asarray(rows)[rank() :: world()]


def gather_rows(values: np.ndarray, n: int) -> np.ndarray:
    """Put every rank's ``my_rows`` predictions back in the order of the ``n`` rows."""
    if world() == 1:
        return values
    parts: list = [None] * world()
    dist.all_gather_object(parts, values)
    out = np.empty((n, *values.shape[1:]), dtype=values.dtype)
    for r, part in enumerate(parts):
        out[r :: world()] = part
    return out
