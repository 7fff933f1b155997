"""The networks' per-epoch validation score: the competition's KL divergence on the fold's
validation patches, read as prediction reads them (``train.val_crop``, ``train.dark_corrected``).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import distributed
from ..batches import upload
from ..evaluation import Evaluator
from ..inference import center_crop, predict_modes
from ..metric import kl_divergence
from ..pixels import Normalizer, mask_proportions
from ..radiometry import FoldRadiometry


class ValidationKL(Evaluator):
    """``val_kl``: KL of the validation rows' proportions as ``predict.mode`` counts them (one
    view), and ``val_kl_soft`` of the softmax means. With ``train.val_crop`` the central crop
    is scored against the crop's own proportions; with ``bound`` the patches are dark-level
    corrected onto it first, as prediction corrects them (in memory, as ``predict_fold`` does).
    Under torchrun the rows are shared out and gathered."""

    metric = "val_kl"
    lower_is_better = True

    def __init__(
        self,
        config: dict,
        images: np.ndarray,
        masks: np.ndarray,
        rows: np.ndarray,
        labels: np.ndarray,
        normalizer: Normalizer,
        device: torch.device,
        bound: np.ndarray | None = None,
    ) -> None:
        self.config, self.normalizer, self.device = config, normalizer, device
        self.crop = config["train"]["val_crop"]
        self.target = labels
        if self.crop:
            crops = center_crop(np.asarray(masks[rows]), self.crop)
            self.target = np.stack([mask_proportions(m) for m in crops]).astype(np.float64)
        self.rows = rows  # the fold's validation rows of ``images``
        self.images, self.index = images, rows  # what predicts reads them from, and where
        if bound is not None:
            self.images = FoldRadiometry(bound=bound).prepared(images, rows)
            self.index = np.arange(len(rows))

    def prepare(self, data_on_device: bool) -> None:
        if data_on_device:
            self.images = upload(self.images, self.index, self.device)
            self.index = np.arange(len(self.index))

    def score(self, model: torch.nn.Module) -> dict[str, float]:
        mode = self.config["predict"]["mode"]
        val = predict_modes(
            model,
            self.images,
            distributed.my_rows(self.index),
            self.normalizer,
            self.config,
            self.device,
            tta=1,
            modes=("hard", "soft") if mode == "hard" else ("soft",),
            crop=self.crop,
        )
        val = {m: distributed.gather_rows(v, len(self.index)) for m, v in val.items()}
        return {
            "val_kl": kl_divergence(self.target, val[mode]),
            "val_kl_soft": kl_divergence(self.target, val["soft"]),
        }
