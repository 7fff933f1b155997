"""Train one network on one fold's rows. Knows nothing about folds, experiments, kinds of
model nor their metric: it gets a built network, its training data, and from the member an
``Evaluator`` (the per-epoch validation score, and which score is better) and ``Callback``
objects (files kept beside the weights, per-epoch hooks); see ``evaluation.py``.

Resumable: ``last.pt`` (model, optimiser, scheduler, epoch, history, RNG states) is written
atomically after every epoch, ``best.pt`` whenever the evaluator's score improves, ``final.pt``
(the weights after the last epoch) when training ends; calling ``fit`` again on the same work
directory continues where it stopped. ``selected_checkpoint`` names the one to predict with.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .atomic import atomic_path, write_json
from .batches import training_batches
from .evaluation import Callback, Evaluator
from .losses import total_loss
from .pixels import Normalizer
from .progress import bar
from .runtime import autocast, to_layout

LOOP_FIELDS = ("epoch", "lr", "train_loss")  # a history row: these, the evaluator's, "seconds"


def build_optimizer(config: dict, model: torch.nn.Module) -> torch.optim.Optimizer:
    tcfg = config["train"]
    optim_cls = torch.optim.AdamW if tcfg["optimizer"] == "adamw" else torch.optim.Adam
    return optim_cls(model.parameters(), lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])


def build_ema(net: torch.nn.Module, decay: float):
    """An exponential moving average of ``net``'s weights (timm ``ModelEmaV3``) that validates,
    is saved and predicts while the raw weights train on. Warmed up: the decay at update ``s``
    is ``min(decay, 1 - (1 + s)^(-2/3))``, so the first update copies the weights and the
    average only reaches ``decay`` after enough steps. Without it an average starts from the
    random initial weights and keeps ``decay^steps`` of them: at 0.99 over the 240 steps of a
    sample fold (30 epochs of 8 batches), 9% (docs/decisions.md)."""
    from timm.utils import ModelEmaV3

    return ModelEmaV3(net, decay=decay, use_warmup=True)


def _schedule(config: dict, total_steps: int, steps_per_epoch: int):
    warmup = config["train"]["warmup_epochs"] * steps_per_epoch
    if config["train"]["scheduler"] == "none":
        return lambda step: 1.0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train_step(
    model: torch.nn.Module,
    batch: dict,
    optimizer: torch.optim.Optimizer,
    config: dict,
    weights: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """One optimisation step on a batch from ``batches.py``; returns the loss (on the device,
    detached: reading it would wait for the GPU).

    In a distributed job every rank holds the same global batch and trains on its slice; the
    loss is normalised by the whole batch and multiplied by the world size, so the gradient
    DistributedDataParallel averages is the gradient of the whole batch's loss."""
    world, global_batch = distributed.world(), None
    if world > 1:
        global_batch = batch
        batch = {k: v[distributed.rank() :: world] for k, v in batch.items()}
    with autocast(device, config["run"]):
        logits = model(to_layout(batch["image"], config["run"]))
    loss = total_loss(logits, batch, config["loss"], weights, global_batch) * world
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config["train"]["grad_clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config["train"]["grad_clip"])
    optimizer.step()
    return loss.detach()


def fit(
    config: dict,
    model: torch.nn.Module,
    images: np.ndarray,
    masks: np.ndarray,
    train_rows: np.ndarray,
    normalizer: Normalizer,
    work: Path,
    device: torch.device,
    *,
    evaluator: Evaluator,
    loss_weights: torch.Tensor,
    callbacks: Sequence[Callback] = (),
    seed: int,
    desc: str = "",
    bound: np.ndarray | None = None,
) -> list[dict]:
    """Train ``model`` (built, on ``device``) on ``train_rows``, score it with ``evaluator``
    after each epoch; returns the history. ``loss_weights``: the cross-entropy's class weights.
    ``seed`` seeds the batches (the caller seeds model init). ``bound``
    (``train.dark_corrected``): the training samples dark-level corrected onto it, after
    their changes, as prediction corrects patches.

    Under torchrun the ranks train one model together (DistributedDataParallel; SyncBatchNorm
    on GPUs): every rank draws the same global batch and trains on its slice, the evaluator
    gives every rank the same scores, and rank 0 writes."""
    work.mkdir(parents=True, exist_ok=True)
    tcfg = config["train"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: pick the fastest kernels
    net, world = model, distributed.world()
    if world > 1:
        if device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        model = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = build_optimizer(config, net)
    ema = build_ema(net, tcfg["ema"]) if tcfg["ema"] else None
    kept = net if ema is None else ema.module
    batches = training_batches(
        config, images, masks, train_rows, normalizer, device, seed=seed, bound=bound
    )
    steps = tcfg["steps_per_epoch"] or len(batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(config, steps * tcfg["epochs"], steps)
    )
    if distributed.is_writer():
        for callback in callbacks:
            for name, content in callback.files_to_save().items():
                write_json(work / name, content)
    weights = loss_weights.to(device)
    evaluator.prepare(data_on_device=batches.resident)

    history: list[dict] = []
    start_epoch = 0
    last = work / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"] + 1
        torch.set_rng_state(state["torch_rng"])
        batches.set_state(state["batch_rng"])

    for epoch in range(start_epoch, tcfg["epochs"]):
        if evaluator.stale_epochs(history) >= tcfg["early_stopping"] > 0:
            break
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        steps_bar = bar(
            enumerate(batches.epoch(steps), 1),
            total=steps,
            desc=f"{desc} epoch {epoch + 1}/{tcfg['epochs']}",
            unit="step",
        )
        for step, batch in steps_bar:
            loss_sum += train_step(model, batch, optimizer, config, weights, device)
            scheduler.step()
            if ema is not None:
                ema.update(net, step=epoch * steps + step)
            if not steps_bar.disable and (step % 20 == 0 or step == steps):
                steps_bar.set_postfix(loss=f"{loss_sum.item() / step / world:.4f}")
        if world > 1:  # each rank holds world x its share of the batch loss
            torch.distributed.all_reduce(loss_sum)
        loss_sum /= world
        best = evaluator.best_score(history)
        scores = evaluator.score(kept)
        history.append(
            {
                "epoch": epoch + 1,
                "lr": scheduler.get_last_lr()[0],
                "train_loss": loss_sum.item() / steps,
                **scores,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        improved = evaluator.better(scores[evaluator.metric], best)
        if distributed.is_writer():
            _save_epoch(work, net, kept, optimizer, scheduler, batches, history, epoch, improved)
        distributed.barrier()
        for callback in callbacks:
            callback.on_epoch_end(history[-1])
    if distributed.is_writer():
        with atomic_path(work / "final.pt") as tmp:
            torch.save(kept.state_dict(), tmp)
    distributed.barrier()
    return history


def _save_epoch(work, net, kept, optimizer, scheduler, batches, history, epoch, improved):
    """After an epoch: ``best.pt`` if it improved, ``last.pt`` (to resume), the history.
    ``kept`` is the model that predicts: ``net``, or its moving average."""
    if improved:
        with atomic_path(work / "best.pt") as tmp:
            torch.save(kept.state_dict(), tmp)
    with atomic_path(work / "last.pt") as tmp:
        torch.save(
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "history": history,
                "torch_rng": torch.get_rng_state(),
                "batch_rng": batches.state(),
                **({"ema": kept.state_dict()} if kept is not net else {}),
            },
            tmp,
        )
    write_history(work / "history.csv", history)


def selected_checkpoint(config: dict, work: Path) -> Path:
    """The weights a fold predicts with: ``final.pt`` (train.select last: a fixed schedule,
    nothing chosen on the validation fold) or ``best.pt`` (the evaluator's best epoch)."""
    return work / ("best.pt" if config["train"]["select"] == "best" else "final.pt")


def write_history(path: Path, history: list[dict]) -> None:
    """Any member's history as CSV: the loop's columns, the validation columns (``val_*``),
    ``seconds``, then whatever else the rows hold."""
    keys = list(dict.fromkeys(key for row in history for key in row))
    first = [*LOOP_FIELDS, *(key for key in keys if key.startswith("val_")), "seconds"]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*first, *(k for k in keys if k not in first)])
        writer.writeheader()
        writer.writerows(history)
