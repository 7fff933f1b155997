"""Inference, in one place: network forward passes with test-time views (proportions, per-pixel
probabilities, masks). Loading a trained experiment's fold models: ``fold_models.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from .losses import hard_proportions, soft_proportions
from .pixels import TTA_VIEWS, Normalizer, d4_invert, d4_views, pixels_to_tensor
from .progress import bar
from .runtime import autocast, to_layout


def network_inputs(
    pixels: np.ndarray | torch.Tensor, normalizer: Normalizer, device: torch.device, config: dict
) -> torch.Tensor:
    """(B, 4, H, W) uint16 pixels, or their int16 tensor (``batches.upload``) -> normalised
    network inputs on the device (the pixels travel as 2-byte integers, normalised there)."""
    if not isinstance(pixels, torch.Tensor):
        pixels = pixels_to_tensor(pixels)
    x = normalizer(pixels.to(device, non_blocking=True))
    return to_layout(x, config["run"])


def center_crop(array, size: int):
    """The central ``size`` x ``size`` window of (..., H, W) arrays or tensors (no-op for 0 or
    full size)."""
    height, width = array.shape[-2:]
    if not size or size >= min(height, width):
        return array
    top, left = (height - size) // 2, (width - size) // 2
    return array[..., top : top + size, left : left + size]


@torch.no_grad()
def predict_modes(
    model: torch.nn.Module,
    images: np.ndarray | torch.Tensor,
    rows: np.ndarray,
    normalizer: Normalizer,
    config: dict,
    device: torch.device,
    *,
    tta: int,
    modes: tuple[str, ...],
    crop: int = 0,
    desc: str | None = None,
) -> dict[str, np.ndarray]:
    """(len(rows), 10) proportions for each of ``modes`` ('soft', 'hard') from one pass,
    averaged over ``tta`` flips/rotations, on whole patches or their central ``crop``.
    ``images``: the cache's uint16 array, or patches already on the device (``upload``).

    Proportions do not change under a flip or rotation, so views are averaged without being
    mapped back.
    """
    batch = config["predict"]["batch_size"]
    model.eval()
    out = {mode: np.zeros((len(rows), 10), dtype=np.float64) for mode in modes}
    for start in bar(range(0, len(rows), batch), desc=desc):
        wanted = rows[start : start + batch]
        chunk = np.sort(wanted)  # sorted reads are faster on a memmap
        order = np.searchsorted(chunk, wanted)
        if isinstance(images, torch.Tensor):
            pixels = images[torch.from_numpy(chunk).to(images.device)]
        else:
            pixels = images[chunk]
        x = network_inputs(center_crop(pixels, crop), normalizer, device, config)
        totals = dict.fromkeys(modes, 0)
        for view in d4_views(x, tta):
            with autocast(device, config["run"]):
                logits = model(view)
            for mode in modes:
                hard = mode == "hard" and logits.ndim == 4  # image-level logits have no pixels
                totals[mode] = totals[mode] + (
                    hard_proportions(logits) if hard else soft_proportions(logits)
                )
        for mode in modes:
            out[mode][start : start + len(chunk)] = (
                (totals[mode] / tta).double().cpu().numpy()[order]
            )
    return out


def predict_proportions(
    model: torch.nn.Module,
    images: np.ndarray,
    rows: np.ndarray,
    normalizer: Normalizer,
    config: dict,
    device: torch.device,
    *,
    desc: str | None = None,
) -> np.ndarray:
    """Whole-patch proportions as the config's ``predict`` section says (mode, TTA views)."""
    mode = config["predict"]["mode"]
    return predict_modes(
        model,
        images,
        rows,
        normalizer,
        config,
        device,
        tta=config["predict"]["tta"],
        modes=(mode,),
        desc=desc,
    )[mode]


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module,
    images: np.ndarray,
    normalizer: Normalizer,
    config: dict,
    device: torch.device,
    tta: int = 8,
) -> np.ndarray:
    """The TTA-averaged softmax of (n, 4, H, W) patches: (n, 10, H, W) float32 per pixel
    (each view mapped back), or (n, 10) for an image-level model."""
    model.eval()
    x = network_inputs(images, normalizer, device, config)
    probs = 0
    for view_index, view in zip(TTA_VIEWS[tta], d4_views(x, tta), strict=True):
        with autocast(device, config["run"]):
            p = model(view).float().softmax(dim=1)
        probs = probs + (d4_invert(p, view_index) if p.ndim == 4 else p)
    return (probs / tta).cpu().numpy()


def predict_masks(
    model: torch.nn.Module,
    images: np.ndarray,
    normalizer: Normalizer,
    config: dict,
    device: torch.device,
    tta: int = 8,
) -> np.ndarray:
    """Per-pixel argmax of the TTA-averaged softmax, (n, H, W) uint8 (segmentation models)."""
    probs = predict_probabilities(model, images, normalizer, config, device, tta)
    return probs.argmax(axis=1).astype(np.uint8)
