"""What the torch-network kinds share: per-band normaliser, the training loop (``trainer.py``)
with what it validates by and keeps (``evaluator``: the validation KL, ``kl_evaluator.py``;
``callbacks``), the weights chosen by ``train.select``, and inference with test-time views
(``inference.py``). A network kind only says how to build its ``nn.Module``; one with another
metric also returns its own ``evaluation.Evaluator``. With ``train.dark_corrected`` a fold
trains (and validates each epoch) on crops dark-level corrected onto its training patches'
bound after their changes, as ``predict.dark_level`` corrects the patches it predicts.

A fold directory holds ``model.pt`` (the weights it predicts with), ``normalizer.json``, and
with ``loss.class_weights`` the weights its cross-entropy used (``class_weights.json``), which
``predict.logit_adjustment`` takes back out of its logits (``AdjustedLogits``) in every
prediction made from the fold directory (OOF, test, maps); the per-epoch validation curve is
of the logits as trained.
"""

from __future__ import annotations

import json
import shutil
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .. import distributed, weights
from ..atomic import atomic_path, write_json
from ..augment import host_transforms
from ..constants import N_BANDS, N_CLASSES
from ..errors import ConfigError
from ..evaluation import Callback, EpochHook, Evaluator, SaveJson
from ..inference import network_inputs, predict_masks, predict_probabilities, predict_proportions
from ..losses import class_weights
from ..pixels import Normalizer, fit_normalizer
from ..radiometry import dark_bound
from ..runtime import seed_everything
from ..trainer import fit, selected_checkpoint
from .base import FitResult, FoldData, FoldModel, Member, require_dark_level
from .kl_evaluator import ValidationKL

CLASS_WEIGHTS_FILE = "class_weights.json"  # the cross-entropy's class weights, when weighted


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class AdjustedLogits(nn.Module):
    """A trained network whose logits come out less ``alpha`` x log(class weight): a network
    trained with class-weighted cross-entropy leans toward the classes weighted up by about
    their weight (logit adjustment); ``alpha`` 1 takes all of it back, 0 none. Classes with
    weight 0 (no_data, clouds, classes absent from training) are left as they are."""

    def __init__(self, model: nn.Module, weights: list[float], alpha: float) -> None:
        super().__init__()
        self.model = model
        w = torch.tensor(weights, dtype=torch.float32)
        shift = torch.where(w > 0, alpha * w.clamp_min(1e-12).log(), torch.zeros_like(w))
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        shape = (1, -1) + (1,) * (logits.ndim - 2)  # (B, 10, H, W) pixels or (B, 10) images
        return logits - self.shift.to(logits.dtype).view(shape)


class NetworkFoldModel(FoldModel):
    def __init__(
        self, model: nn.Module, normalizer: Normalizer, config: dict, device: torch.device
    ):
        self.model, self.normalizer, self.config, self.device = model, normalizer, config, device

    def predict_proportions(
        self, images: np.ndarray, rows: np.ndarray, *, desc: str | None = None
    ) -> np.ndarray:
        return predict_proportions(
            self.model, images, rows, self.normalizer, self.config, self.device, desc=desc
        )

    def predict_masks(self, images: np.ndarray) -> np.ndarray | None:
        tta = self.config["predict"]["tta"]
        return predict_masks(self.model, images, self.normalizer, self.config, self.device, tta)

    @torch.no_grad()
    def adapt_batchnorm(self, images: np.ndarray, batch: int = 16) -> bool:
        """Re-estimate the BatchNorm statistics on ``images`` (the target region's patches, no
        labels): transductive adaptation. False when the network has no BatchNorm."""
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return False
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over every batch below
            norm.train()
        for start in range(0, len(images), batch):
            pixels = np.asarray(images[start : start + batch])
            self.model(network_inputs(pixels, self.normalizer, self.device, self.config))
        self.model.eval()
        return True

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        tta = self.config["predict"]["tta"]
        return predict_probabilities(
            self.model, images, self.normalizer, self.config, self.device, tta
        )


def fold_normalizer(config: dict, images: np.ndarray, rows: np.ndarray, seed: int) -> Normalizer:
    """The normaliser a network's fold trains and predicts with (``normalize``): a fixed scale,
    what pretrained weights expect (ssl4eo: / 10000), or statistics fitted on the fold's
    training rows, with the patch-relative channels where asked."""
    ncfg = config["normalize"]
    if ncfg["scale"] > 0:
        return Normalizer(mean=[0.0] * 4, std=[ncfg["scale"]] * 4, log=False)
    return fit_normalizer(
        images,
        rows,
        log=ncfg["log"],
        seed=seed,
        per_image=ncfg["per_image"],
        patch_relative=ncfg["patch_relative"],
    )


class NetworkMember(Member):
    is_network = True
    kept_files: ClassVar[tuple[str, ...]] = (
        "model.pt",
        "normalizer.json",
        CLASS_WEIGHTS_FILE,
    )

    @classmethod
    def validate(cls, config: dict) -> None:
        weights.check(config)
        host_transforms(config["augment"]["albumentations"])  # every name known, or one line
        ncfg = config["normalize"]
        if ncfg["patch_relative"] and (ncfg["per_image"] or ncfg["scale"] > 0):
            raise ConfigError(
                "normalize.patch_relative adds channels to bands standardised with the training "
                "folds' statistics: it needs normalize.per_image: false and normalize.scale: 0"
            )
        if ncfg["patch_relative"] and weights.source(config["model"]["pretrained"]) not in (
            None,
            "imagenet",
        ):
            raise ConfigError(
                "normalize.patch_relative makes 8 input channels: a 4-band state dict (ssl4eo or a "
                "file) cannot be loaded into them; use model.pretrained: imagenet or false"
            )
        require_dark_level(
            config,
            "train.dark_corrected",
            "crops dark-level corrected as predicted patches are",
        )
        adjust = config["predict"]["logit_adjustment"]
        if not 0.0 <= adjust <= 1.0:
            raise ConfigError(f"'predict.logit_adjustment' must be in [0, 1], got {adjust}")
        if adjust and config["loss"]["class_weights"] == "none":
            raise ConfigError(
                "predict.logit_adjustment takes a class weighting back out of the logits: it needs "
                "loss.class_weights (none is set)"
            )

    @property
    def in_channels(self) -> int:
        """The network's input channels: the four bands, and with ``normalize.patch_relative`` each
        band less the image's own mean of it too (``pixels.Normalizer``)."""
        return N_BANDS * (2 if self.config["normalize"]["patch_relative"] else 1)

    @abstractmethod
    def build(self) -> nn.Module:
        """A freshly initialised network: (B, ``in_channels``, H, W) -> (B, 10, H, W) or (B, 10)
        logits."""

    def check(self) -> None:
        self.build()

    def prepare(self, device: torch.device) -> nn.Module:
        model = self.build().to(device)
        if self.config["run"]["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        return model

    def evaluator(
        self,
        fold: FoldData,
        normalizer: Normalizer,
        device: torch.device,
        bound: np.ndarray | None,
    ) -> Evaluator:
        """What scores each epoch, picks ``best.pt`` and stops early: the validation KL."""
        return ValidationKL(
            self.config,
            fold.train_images,
            fold.train_masks,
            fold.val_rows,
            fold.labels[fold.val_rows],
            normalizer,
            device,
            bound,
        )

    def callbacks(self, fold: FoldData, loss_weights: torch.Tensor) -> list[Callback]:
        """The class weights, kept beside the fold's model for ``predict.logit_adjustment``
        when the loss is weighted; the fold loop's per-epoch hook."""
        mode = self.config["loss"]["class_weights"]
        kept = {"mode": mode, "weights": loss_weights.tolist()}
        saved = [SaveJson(CLASS_WEIGHTS_FILE, kept)] if mode != "none" else []
        return saved + ([EpochHook(fold.on_epoch)] if fold.on_epoch else [])

    def fit_fold(self, fold: FoldData, work: Path, device: torch.device, seed: int) -> FitResult:
        normalizer = fold_normalizer(self.config, fold.train_images, fold.train_rows, seed)
        if distributed.is_writer():
            write_json(work / "normalizer.json", normalizer.to_dict())
        history_file = work / "history.csv"  # epochs done before an interruption, if any
        resumed = len(history_file.read_text().splitlines()) - 1 if history_file.is_file() else 0
        corrected = self.config["train"]["dark_corrected"]
        bound = dark_bound(fold.train_images, fold.train_rows) if corrected else None
        mode = self.config["loss"]["class_weights"]
        loss_weights = class_weights(fold.train_masks, mode, rows=fold.train_rows)
        evaluator = self.evaluator(fold, normalizer, device, bound)
        seed_everything(seed)  # model init, then the training loop's draws
        history = fit(
            self.config,
            self.prepare(device),
            fold.train_images,
            fold.train_masks,
            fold.train_rows,
            normalizer,
            work,
            device,
            evaluator=evaluator,
            loss_weights=loss_weights,
            callbacks=self.callbacks(fold, loss_weights),
            seed=seed,
            desc=fold.desc,
            bound=bound,
        )
        chosen = selected_checkpoint(self.config, work)
        if distributed.is_writer():
            with atomic_path(work / "model.pt") as tmp:
                shutil.copyfile(chosen, tmp)
        distributed.barrier()
        best = evaluator.best_row(history)["epoch"]
        return FitResult(history, extra={"resumed_after_epoch": resumed, "best_epoch": best})

    def load(self, fold_dir: Path, device: torch.device) -> NetworkFoldModel:
        """The fold's model (``model.pt``, the weights ``train.select`` chose)."""
        model = self.prepare(device)
        state = torch.load(Path(fold_dir) / "model.pt", map_location=device, weights_only=True)
        model.load_state_dict(state)
        norm = json.loads((Path(fold_dir) / "normalizer.json").read_text())
        alpha = self.config["predict"]["logit_adjustment"]
        if alpha:
            model = AdjustedLogits(model, self._class_weights(Path(fold_dir)), alpha).to(device)
        return NetworkFoldModel(model.eval(), Normalizer(**norm), self.config, device)

    def _class_weights(self, fold_dir: Path) -> list[float]:
        """The class weights the fold trained with (``class_weights.json``), checked against
        the config's ``loss.class_weights``."""
        path = fold_dir / CLASS_WEIGHTS_FILE
        mode = self.config["loss"]["class_weights"]
        if not path.is_file():
            raise ConfigError(
                f"{path}: missing; predict.logit_adjustment needs the class weights the fold "
                "trained with (written by training since this option exists): retrain it"
            )
        saved = json.loads(path.read_text())
        if saved.get("mode") != mode or len(saved.get("weights", [])) != N_CLASSES:
            raise ConfigError(
                f"{path}: weights for loss.class_weights {saved.get('mode')!r} over "
                f"{len(saved.get('weights', []))} classes; the config says {mode!r} over "
                f"{N_CLASSES}"
            )
        return saved["weights"]
