"""Throughput measurements shared by the speed subcommands: the trainer's own training step and
prediction, timed on real data (used by ``loader``, ``model`` and ``estimate``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from landcover.batches import training_batches
from landcover.cache import PreparedData
from landcover.inference import predict_modes
from landcover.losses import class_weights
from landcover.members import member_for
from landcover.members.network import fold_normalizer
from landcover.trainer import build_optimizer, train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(
    batches: Iterable[dict],
    steps: int,
    warmup: int,
    device: torch.device,
    work: Callable[[dict], object] | None = None,
) -> float:
    """Patches/s over ``steps`` batches after ``warmup`` ones, running ``work`` on each."""
    done, n, started = 0, 0, 0.0
    for batch in batches:
        if done == warmup:
            sync(device)
            started = time.perf_counter()
        if work is not None:
            work(batch)
        done += 1
        if done > warmup:
            n += len(batch["target"])
    sync(device)
    return n / (time.perf_counter() - started)


class Bench:
    """One experiment's model, optimiser and batch builder on the training rows of ``data``."""

    def __init__(self, config: dict, data: PreparedData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.rows = np.arange(len(data.train_ids))
        self.normalizer = fold_normalizer(config, data.train_images, self.rows, seed=0)
        self.batches = training_batches(
            config, data.train_images, data.train_masks, self.rows, self.normalizer, device, seed=0
        )
        torch.manual_seed(0)
        self.model = member_for(config).prepare(device).train()
        self.optimizer = build_optimizer(config, self.model)
        self.weights = class_weights(
            data.train_masks, config["loss"]["class_weights"], rows=self.rows
        ).to(device)

    def step(self, batch: dict) -> None:
        train_step(self.model, batch, self.optimizer, self.config, self.weights, self.device)

    def data_rate(self, steps: int, warmup: int) -> float:
        """Patches/s of the batch builder alone."""
        return rate(self.batches.epoch(steps + warmup), steps, warmup, self.device)

    def train_rate(self, steps: int, warmup: int, *, synthetic: bool = False) -> float:
        """Patches/s of training steps fed by the batch builder, or (``synthetic``) by one
        batch already on the device: the ceiling the data path is compared with."""
        total = steps + warmup
        if synthetic:
            fixed = next(self.batches.epoch(1))
            batches = (fixed for _ in range(total))
        else:
            batches = self.batches.epoch(total)
        rate_ = rate(batches, steps, warmup, self.device, self.step)
        self.model.train()
        return rate_

    def predict_rate(self, patches: int, crop: int = 0) -> float:
        """Patches/s of one prediction view (whole patches, or their central ``crop``), as the
        trainer predicts: normalisation on the device, hard and soft proportions when the
        experiment predicts hard ones."""
        mode = self.config["predict"]["mode"]
        modes = ("hard", "soft") if mode == "hard" else ("soft",)
        batch = self.config["predict"]["batch_size"]
        rows = np.resize(self.rows, patches + batch)  # the first batch is a warm-up

        def run(chosen: np.ndarray) -> None:
            predict_modes(
                self.model,
                self.data.train_images,
                chosen,
                self.normalizer,
                self.config,
                self.device,
                tta=1,
                modes=modes,
                crop=crop,
            )

        run(rows[:batch])
        sync(self.device)
        started = time.perf_counter()
        run(rows[batch:])
        sync(self.device)
        self.model.train()
        return patches / (time.perf_counter() - started)


def count_flops(config: dict, size: int, *, train: bool) -> float:
    """FLOPs per patch of a forward pass, counted by torch's FLOP counter on two random
    ``size`` x ``size`` patches on the CPU; ``train``: 3 x that (forward + a backward of twice
    the forward). The counter's own backward figure is not used: it ignores ``groups`` in the
    weight gradient of grouped convolutions (66x the forward for a 64-channel depthwise 3x3
    instead of 2x), which inflates depthwise backbones (EfficientNet, ConvNeXt)."""
    member = member_for(config)
    model = member.build().train(train)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(2, member.in_channels, size, size))
    return counter.get_total_flops() / 2 * (3 if train else 1)
