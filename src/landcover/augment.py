"""Training augmentation, defined once: what is drawn for each sample of a batch, and how it
is applied on the training device (``batches.py`` calls both).

To add an augmentation: give it a key (0 = off) in the ``augment`` section of
``configs/base.yaml``, draw its per-sample parameters in ``draw_augment`` from the batch's
generator (append new draws after the existing ones, so that runs without it keep their
numbers), and apply them in ``apply_augment`` to the normalised (B, C, h, w) batch. Geometry
(crop window, D4 view) is drawn here too and applied by the gather in ``batches.py``; the mask
follows it, radiometry leaves the mask alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Draws:
    """One batch's random draws (on the host; ``batches.py`` moves them to the device)."""

    top: torch.Tensor  # (B,) crop window
    left: torch.Tensor
    views: torch.Tensor  # (B,) D4 element 0..7 (0: unchanged)
    radiometry: dict[str, torch.Tensor]  # name -> per-sample parameters


def draw_augment(
    generator: torch.Generator,
    n: int,
    max_offset: tuple[int, int],
    channels: int,
    augment: dict,
) -> Draws:
    g = generator
    top = torch.randint(0, max_offset[0] + 1, (n,), generator=g)
    left = torch.randint(0, max_offset[1] + 1, (n,), generator=g)
    views = (
        torch.randint(0, 8, (n,), generator=g)
        if augment["d4"]
        else torch.zeros(n, dtype=torch.long)
    )
    radiometry = {}
    if augment["gain"] or augment["offset"]:  # per-band log-gain and offset, standard normal
        radiometry["jitter"] = torch.randn(n, 2, channels, generator=g)
    return Draws(top, left, views, radiometry)


def apply_augment(image: torch.Tensor, radiometry: dict, augment: dict) -> torch.Tensor:
    """Radiometric augmentation of a normalised (B, C, h, w) batch, on its device."""
    if "jitter" in radiometry:
        noise = radiometry["jitter"]
        scale = torch.exp(augment["gain"] * noise[:, 0])[:, :, None, None]
        shift = (augment["offset"] * noise[:, 1])[:, :, None, None]
        image = image * scale + shift
    return image
