"""Training batches, built on the training device: a random crop and a D4 flip/rotation of
every sample in one index gather, then ``augment.py`` (normalisation, radiometric jitter) and
pixel-fraction targets. Transforms named in ``augment.albumentations`` run on the host first
(``augment.host_transforms``).

The training patches are copied to the device once (``run.data_on_device``, on a GPU when they
fit) or gathered from the host cache per batch. One seeded torch generator draws everything and
its state is saved in checkpoints, so a resumed run draws the same numbers. No loader
processes: on a GPU the data path is a few kernels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .augment import apply_augment, draw_augment, host_transforms, reflectance_augment
from .errors import ConfigError
from .pixels import Normalizer, batch_proportions, pixels_to_tensor
from .radiometry import dark_corrected_torch, row_levels


def crop_and_turn(
    images: torch.Tensor,
    masks: torch.Tensor,
    samples: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    size: int,
    views: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each b: the ``size`` window at (top[b], left[b]) of ``images[samples[b]]`` and
    ``masks[samples[b]]``, turned by D4 element ``views[b]`` (bit 0 flips rows, bit 1 flips
    columns, bit 2 transposes: the 8 combinations are the 8 flips/rotations of the square).

    One gather per tensor, with index tensors on the images' device. Returns
    (B, C, size, size) images and (B, size, size) masks.
    """
    n, device, width = len(samples), images.device, images.shape[-1]
    line = torch.arange(size, device=device)
    i = line.view(1, size, 1).expand(n, size, size)
    j = line.view(1, 1, size).expand(n, size, size)
    views = views.view(n, 1, 1)
    transposed = (views & 4).bool()
    a, b = torch.where(transposed, j, i), torch.where(transposed, i, j)
    a = torch.where((views & 1).bool(), size - 1 - a, a)
    b = torch.where((views & 2).bool(), size - 1 - b, b)
    flat = ((top.view(n, 1, 1) + a) * width + left.view(n, 1, 1) + b).view(n, 1, -1)
    pixels = images[samples].flatten(2)  # (B, C, H * W)
    pixels = torch.gather(pixels, 2, flat.expand(-1, pixels.shape[1], -1))
    cropped = torch.gather(masks[samples].flatten(1), 1, flat[:, 0])
    return pixels.view(n, -1, size, size), cropped.view(n, size, size)


class TensorBatches:
    """Augmented training batches of ``rows``, ``batch_size`` at a time, on ``device``."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        rows: np.ndarray,
        normalizer: Normalizer,
        *,
        augment: dict,
        crop: int,
        batch_size: int,
        device: torch.device,
        seed: int,
        on_device: bool,
        bound: np.ndarray | None = None,
    ) -> None:
        """``bound`` (bands,): each sample dark-level corrected onto it, after its changes, as
        prediction corrects a patch (``train.dark_corrected``); None: as they are."""
        self.normalizer, self.augment, self.device = normalizer, augment, device
        self.generator = torch.Generator().manual_seed(seed)
        self.rows = np.sort(np.asarray(rows))
        self.batch_size = min(batch_size, len(self.rows))
        height, width = images.shape[-2:]
        self.size = crop if crop and crop < min(height, width) else height
        if height != width and self.size == height:
            raise ConfigError(
                f"patches are {height}x{width}: whole-patch training needs square patches; "
                "set train.crop to a square crop size"
            )
        self.max_offset = (height - self.size, width - self.size)
        self.images, self.masks = images, masks
        self.levels = self.bound = None
        if bound is not None:  # each training patch's dark level, read once (host, float32)
            self.levels = torch.from_numpy(row_levels(images, self.rows).astype(np.float32))
            self.bound = self._to_device(torch.tensor(bound, dtype=torch.float32))
        self.host = host_transforms(augment.get("albumentations") or [])
        self.resident = on_device and self.host is None  # albumentations run on the host
        if self.resident:  # the training rows, copied to the device once
            self.images, self.masks = (
                upload(images, self.rows, device),
                upload(masks, self.rows, device),
            )

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size  # whole batches only

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def epoch(self, steps: int) -> Iterator[dict]:
        """``steps`` batches; a new shuffle for each pass over the rows (and each epoch)."""
        done = 0
        while done < steps:
            for batch in self._pass():
                yield batch
                done += 1
                if done == steps:
                    return

    def _pass(self) -> Iterator[dict]:
        order = torch.randperm(len(self.rows), generator=self.generator)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._batch(order[start : start + self.batch_size])

    def _batch(self, picked: torch.Tensor) -> dict:
        n = len(picked)
        draws = draw_augment(self.generator, n, self.max_offset, self.images.shape[1], self.augment)
        radiometry = {k: self._to_device(v) for k, v in draws.radiometry.items()}
        if self.resident:
            images, masks, samples = self.images, self.masks, picked
        else:  # gather the batch on the host (sorted reads suit a memmap), then move it
            wanted = self.rows[picked.numpy()]
            chunk = np.sort(wanted)
            samples = torch.from_numpy(np.searchsorted(chunk, wanted))
            pixels, labels = np.asarray(self.images[chunk]), np.asarray(self.masks[chunk])
            if self.host is not None:  # drawn after every other draw: runs without keep theirs
                seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
                pixels, labels = self.host(pixels, labels, seed)
            images = self._to_device(pixels_to_tensor(pixels))
            masks = self._to_device(torch.from_numpy(labels))
        # the small draws travel together: one copy per batch
        geometry = torch.stack([samples, draws.top, draws.left, draws.views])
        samples, top, left, views = self._to_device(geometry)
        pixels, crops = crop_and_turn(images, masks, samples, top, left, self.size, views)
        physical = reflectance_augment(radiometry)
        if self.levels is not None:
            levels = self._to_device(self.levels[picked])
            physical = dark_corrected_torch(physical, levels, self.bound)
        image = apply_augment(self.normalizer(pixels, physical), radiometry, self.augment)
        return {"image": image, "mask": crops.long(), "target": batch_proportions(crops)}

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        """Host -> device from pinned memory without waiting: a plain copy of pageable memory
        would make the host wait for the GPU to finish the previous step."""
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x


def upload(
    array: np.ndarray, rows: np.ndarray, device: torch.device, chunk: int = 256
) -> torch.Tensor:
    """``array[rows]`` as a device tensor (uint16 pixels as int16 bits, see ``dataset.py``),
    copied in chunks so the host never holds more than ``chunk`` patches at once."""

    def convert(part: np.ndarray) -> torch.Tensor:
        part = np.asarray(part)
        return pixels_to_tensor(part) if part.dtype == np.uint16 else torch.from_numpy(part)

    first = convert(array[rows[:1]])
    out = torch.empty((len(rows), *first.shape[1:]), dtype=first.dtype, device=device)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        out[start : start + len(part)] = convert(array[part]).to(device)
    return out


def training_batches(
    config: dict,
    images: np.ndarray,
    masks: np.ndarray,
    rows: np.ndarray,
    normalizer: Normalizer,
    device: torch.device,
    *,
    seed: int,
    bound: np.ndarray | None = None,
) -> TensorBatches:
    """The training batches of a config (``train`` crop and batch size, ``augment``), dark-level
    corrected onto ``bound`` if given."""
    return TensorBatches(
        images,
        masks,
        rows,
        normalizer,
        augment=config["augment"],
        crop=config["train"]["crop"],
        batch_size=config["train"]["batch_size"],
        device=device,
        seed=seed,
        on_device=device.type == "cuda" and _fits_on_device(config, images, device),
        bound=bound,
    )


def _fits_on_device(config: dict, images: np.ndarray, device: torch.device) -> bool:
    """``run.data_on_device`` and the fold's patches (training pixels and masks, validation
    pixels: at most every training patch) take at most half the device's free memory."""
    if not config["run"]["data_on_device"]:
        return False
    need = len(images) * (images[0].nbytes + images[0][0].size)  # uint16 pixels + uint8 mask
    free, _ = torch.cuda.mem_get_info(device)
    if need > free / 2:
        print(
            f"training patches ({need / 2**30:.1f} GiB) exceed half the free GPU memory "
            f"({free / 2**30:.1f} GiB): gathering batches from host memory instead"
        )
        return False
    return True
