"""Training augmentation, defined once: what is drawn for each sample of a batch, and how it
is applied on the training device (``batches.py`` calls both).

To add an augmentation: give it a key (0 = off) in the ``augment`` section of
``configs/base.yaml``, draw its per-sample parameters in ``draw_augment`` from the batch's
generator (append new draws after the existing ones, so that runs without it keep their
numbers), and apply them in ``reflectance_augment`` (physical changes of the reflectances,
before normalisation, each a rising map of each band's values, so that
``radiometry.dark_corrected_torch`` can follow a patch's dark level through it) or
``apply_augment`` (the normalised (B, C, h, w) batch). Geometry (crop window, D4 view) is drawn
here too and applied by the gather in ``batches.py``; the mask follows it, radiometry leaves the
mask alone.

Without code, a model file may add albumentations transforms by name
(``augment.albumentations: [{name: GaussNoise, p: 0.3, std_range: [0.01, 0.03]}]``):
``host_transforms`` runs them on each batch's patches on the host, before the device (the
batches are then gathered on the host, not kept on the GPU), then the changes above follow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError


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
    if augment["haze"]:
        radiometry["haze"] = torch.rand(n, generator=g) * augment["haze"]
    if augment["gamma"]:
        radiometry["gamma"] = torch.exp(augment["gamma"] * torch.randn(n, generator=g))
    if augment["season"]:
        radiometry["season"] = torch.rand(n, generator=g) * augment["season"]
    if augment["radiometric_shift"]:
        radiometry["shift"] = _draw_shift(g, n, channels, augment["radiometric_shift"])
    return Draws(top, left, views, radiometry)


AIRLIGHT = (1800.0, 1600.0, 1500.0, 1400.0)  # haze reflectance x 1e4: brightest in blue (B,G,R,N)
# The shift test's ranges (landcover/shift.py says why), which augment.radiometric_shift trains
# under too:
GAIN = (0.85, 1.15)  # per-band gain
OFFSET = 300.0  # per-band offset up to this (x 1e4: 0.03 reflectance)
HAZE = (0.1, 0.3)  # haze fraction t


def _draw_shift(g: torch.Generator, n: int, channels: int, p: float) -> torch.Tensor:
    """(n, 2, C): per sample, with probability ``p``, one change of the shift test's gain,
    offset or haze (each a third of the time) as a per-band affine map r' = a r + b (rows a
    and b); the others keep a = 1, b = 0."""
    changed = torch.rand(n, generator=g) < p
    kind = torch.randint(0, 3, (n,), generator=g)
    gain = GAIN[0] + (GAIN[1] - GAIN[0]) * torch.rand(n, channels, generator=g)
    offset = OFFSET * torch.rand(n, channels, generator=g)
    t = (HAZE[0] + (HAZE[1] - HAZE[0]) * torch.rand(n, generator=g))[:, None]
    air = torch.tensor(AIRLIGHT[:channels])
    a = torch.ones(n, channels)
    b = torch.zeros(n, channels)
    a = torch.where((changed & (kind == 0))[:, None], gain, a)
    b = torch.where((changed & (kind == 1))[:, None], offset, b)
    hazy = (changed & (kind == 2))[:, None]
    a = torch.where(hazy, (1 - t).expand(n, channels), a)
    b = torch.where(hazy, t * air, b)
    return torch.stack([a, b], dim=1)


def reflectance_augment(radiometry: dict):
    """The augmentations applied to float reflectances (x 1e4) before normalisation, or None
    when none is drawn (the normaliser then runs as at prediction)."""
    physical = {k: radiometry[k] for k in ("haze", "gamma", "season", "shift") if k in radiometry}
    if not physical:
        return None

    def apply(x: torch.Tensor) -> torch.Tensor:
        if "season" in physical:  # senescence: less NIR, more red
            u = physical["season"][:, None, None]
            x = torch.stack([x[:, 0], x[:, 1], x[:, 2] * (1 + u), x[:, 3] * (1 - u)], dim=1)
        if "gamma" in physical:
            g = physical["gamma"][:, None, None, None]
            x = 1e4 * (x.clamp_min(1) / 1e4) ** g
        if "haze" in physical:
            t = physical["haze"][:, None, None, None]
            air = x.new_tensor(AIRLIGHT).view(1, -1, 1, 1)
            x = (1 - t) * x + t * air
        if "shift" in physical:  # last: the shift test changes the patches as they are
            ab = physical["shift"][:, :, :, None, None]
            x = (ab[:, 0] * x + ab[:, 1]).clamp_min(1)
        return x

    return apply


def apply_augment(image: torch.Tensor, radiometry: dict, augment: dict) -> torch.Tensor:
    """Radiometric augmentation of a normalised (B, C, h, w) batch, on its device. With the
    relative channels after the bands (``normalize.patch_relative``: 2C), a band's jitter scales its
    relative channel too, and its shift, which the image's own mean takes out, leaves it."""
    if "jitter" in radiometry:
        noise = radiometry["jitter"]
        scale = torch.exp(augment["gain"] * noise[:, 0])[:, :, None, None]
        shift = (augment["offset"] * noise[:, 1])[:, :, None, None]
        if image.shape[1] == 2 * scale.shape[1]:
            scale = torch.cat([scale, scale], dim=1)
            shift = torch.cat([shift, torch.zeros_like(shift)], dim=1)
        image = image * scale + shift
    return image


HOST_SCALE = 1e4  # albumentations transforms see reflectance (x 1e4 / this) in [0, 1]


def host_transforms(specs: list[dict]):
    """The ``augment.albumentations`` transforms as one function, or None when there are none:
    each spec names an albumentations transform (``name``) with its keyword arguments (``p``
    among them), built through albumentations' own registry (``A.from_dict``). The function
    takes (n, C, H, W) uint16 patches, (n, H, W) masks and a seed, and returns both changed,
    each patch seen as float32 reflectance in [0, 1] (H, W, C: brighter than 1 clipped) with
    its mask, as albumentations expects; a transform must keep the patch's size."""
    if not specs:
        return None
    import albumentations as A  # only runs that ask for it pay the import

    transforms = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ConfigError(
                f"augment.albumentations[{i}] must be a mapping with a 'name', got {spec!r}"
            )
        params = {k: v for k, v in spec.items() if k != "name"}
        transforms.append({"__class_fullname__": spec["name"], "p": 0.5, **params})
    try:
        compose = A.from_dict(
            {"transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": transforms}}
        )
    except KeyError as err:
        raise ConfigError(f"augment.albumentations: no albumentations transform {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"augment.albumentations: {err}") from None

    def apply(images: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        compose.set_random_seed(seed)
        out_images, out_masks = np.empty_like(images), np.empty_like(masks)
        for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
            x = np.clip(image.transpose(1, 2, 0).astype(np.float32) / HOST_SCALE, 0.0, 1.0)
            done = compose(image=x, mask=mask)
            if done["image"].shape != x.shape or done["mask"].shape != mask.shape:
                raise ConfigError(
                    f"augment.albumentations changed a patch's size {x.shape[:2]} to "
                    f"{done['image'].shape[:2]}: only size-keeping transforms are allowed "
                    "(train.crop crops)"
                )
            scaled = np.rint(done["image"].transpose(2, 0, 1) * HOST_SCALE)
            out_images[i] = np.clip(scaled, 1, 65535)
            out_masks[i] = done["mask"]
        return out_images, out_masks

    return apply
