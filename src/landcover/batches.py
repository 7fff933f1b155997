"""Training batches: random crop, D4 flip/rotation, radiometric jitter, normalisation and
targets, delivered on the training device.

Two backends (``augment.backend``) draw the same kinds of augmentation:

- ``tensor`` (default): whole batches at once on the device. The training patches are copied
  to the device once (``run.data_on_device``, on a GPU when they fit) or gathered from the
  host cache per batch; crop + flip/rotation of a whole batch is one index gather. One seeded
  torch generator draws everything, and its state is saved in checkpoints, so a resumed run
  draws the same numbers. No loader processes: on a GPU the data path is a few kernels.
- ``albumentations``: per-sample crop + D4 with albumentations in DataLoader workers
  (``run.num_workers``), the place to add other per-sample albumentations transforms. The
  sampler draws a seed per sample in the main process, so workers never repeat each other's
  draws and resuming is exact with any number of workers.

Both finish on the device with the same code: normalise, jitter, pixel-fraction targets.
"""

from __future__ import annotations

from collections.abc import Iterator

import albumentations as A
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .dataset import Normalizer, batch_proportions, pixels_to_tensor
from .errors import ConfigError


def finish_batch(
    pixels: torch.Tensor,
    masks: torch.Tensor,
    noise: torch.Tensor,
    normalizer: Normalizer,
    augment: dict,
) -> dict:
    """Raw (B, C, h, w) int16 pixels, (B, h, w) masks and (B, 2, C) standard normal draws, all
    on the device -> ``image`` (normalised, jittered), ``mask`` (int64) and ``target``."""
    image = normalizer(pixels)
    gain, offset = augment["gain"], augment["offset"]
    if gain or offset:
        scale = torch.exp(gain * noise[:, 0])[:, :, None, None]
        shift = (offset * noise[:, 1])[:, :, None, None]
        image = image * scale + shift
    return {"image": image, "mask": masks.long(), "target": batch_proportions(masks)}


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


def _noise(generator: torch.Generator, n: int, channels: int, augment: dict) -> torch.Tensor:
    if augment["gain"] or augment["offset"]:
        return torch.randn(n, 2, channels, generator=generator)
    return torch.zeros(n, 2, channels)


class _Batches:
    """What both backends share: one seeded generator (its state goes in checkpoints) and
    epochs of ``steps`` batches made of passes over the rows (``_pass``)."""

    resident = False  # whether the patches live on the training device

    def __init__(self, normalizer: Normalizer, augment: dict, device: torch.device, seed: int):
        self.normalizer, self.augment, self.device = normalizer, augment, device
        self.generator = torch.Generator().manual_seed(seed)

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
        raise NotImplementedError


class TensorBatches(_Batches):
    """Augmented training batches built on the device (the ``tensor`` backend)."""

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
    ) -> None:
        super().__init__(normalizer, augment, device, seed)
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
        self.resident = on_device
        if on_device:  # the training rows, copied to the device once
            self.images, self.masks = (
                upload(images, self.rows, device),
                upload(masks, self.rows, device),
            )

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size  # whole batches only

    def _pass(self) -> Iterator[dict]:
        order = torch.randperm(len(self.rows), generator=self.generator)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield self._batch(order[start : start + self.batch_size])

    def _batch(self, picked: torch.Tensor) -> dict:
        n, g = len(picked), self.generator
        top = torch.randint(0, self.max_offset[0] + 1, (n,), generator=g)
        left = torch.randint(0, self.max_offset[1] + 1, (n,), generator=g)
        views = (
            torch.randint(0, 8, (n,), generator=g)
            if self.augment["d4"]
            else torch.zeros(n, dtype=torch.long)
        )
        noise = self._to_device(_noise(g, n, self.images.shape[1], self.augment))
        if self.resident:
            images, masks, samples = self.images, self.masks, picked
        else:  # gather the batch on the host (sorted reads suit a memmap), then move it
            wanted = self.rows[picked.numpy()]
            chunk = np.sort(wanted)
            samples = torch.from_numpy(np.searchsorted(chunk, wanted))
            images = self._to_device(pixels_to_tensor(self.images[chunk]))
            masks = self._to_device(torch.from_numpy(np.asarray(self.masks[chunk])))
        # the small draws travel together: one copy per batch
        samples, top, left, views = self._to_device(torch.stack([samples, top, left, views]))
        pixels, crops = crop_and_turn(images, masks, samples, top, left, self.size, views)
        return finish_batch(pixels, crops, noise, self.normalizer, self.augment)

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


class SampleDataset(Dataset):
    """One training sample per ``(row, seed)`` key: albumentations crop + D4 on the raw pixels,
    and the sample's jitter draws. All randomness comes from ``seed``."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, *, augment: dict, crop: int):
        self.images, self.masks = images, masks
        transforms = []
        if crop and crop < min(images.shape[-2:]):
            transforms.append(A.RandomCrop(crop, crop))
        if augment["d4"]:
            transforms.append(A.D4(p=1.0))
        self.spatial = A.Compose(transforms) if transforms else None
        self.jitter = bool(augment["gain"] or augment["offset"])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        row, seed = key
        image = np.asarray(self.images[row])
        mask = np.asarray(self.masks[row])
        if self.spatial is not None:
            self.spatial.set_random_seed(seed)
            out = self.spatial(image=image.transpose(1, 2, 0), mask=mask)
            image, mask = out["image"].transpose(2, 0, 1), out["mask"]
        channels = image.shape[0]
        noise = (
            np.random.default_rng(seed).standard_normal((2, channels))
            if self.jitter
            else np.zeros((2, channels))
        )
        return {
            "pixels": pixels_to_tensor(image),
            "mask": torch.from_numpy(np.require(mask, requirements=["C", "W"])),
            "noise": torch.from_numpy(noise.astype(np.float32)),
        }


class _SeededBatches:
    """Batch sampler: shuffles the rows and gives every sample a seed, both drawn in the main
    process from one generator when a pass starts."""

    def __init__(self, rows: np.ndarray, batch_size: int, generator: torch.Generator):
        self.rows, self.batch_size, self.generator = rows, batch_size, generator

    def __len__(self) -> int:
        return len(self.rows) // self.batch_size

    def __iter__(self):
        order = torch.randperm(len(self.rows), generator=self.generator).numpy()
        seeds = torch.randint(0, 2**31 - 1, (len(self.rows),), generator=self.generator).numpy()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            picked = order[start : start + self.batch_size]
            yield [(int(self.rows[i]), int(seeds[i])) for i in picked]


class AlbumentationsBatches(_Batches):
    """Augmented training batches from per-sample albumentations in DataLoader workers."""

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
        num_workers: int,
    ) -> None:
        super().__init__(normalizer, augment, device, seed)
        rows = np.sort(np.asarray(rows))
        sampler = _SeededBatches(rows, min(batch_size, len(rows)), self.generator)
        self.loader = DataLoader(
            SampleDataset(images, masks, augment=augment, crop=crop),
            batch_sampler=sampler,
            num_workers=num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=num_workers > 0,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def _pass(self) -> Iterator[dict]:
        for batch in self.loader:
            on_device = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            yield finish_batch(
                on_device["pixels"],
                on_device["mask"],
                on_device["noise"],
                self.normalizer,
                self.augment,
            )


def training_batches(
    config: dict,
    images: np.ndarray,
    masks: np.ndarray,
    rows: np.ndarray,
    normalizer: Normalizer,
    device: torch.device,
    *,
    seed: int,
) -> TensorBatches | AlbumentationsBatches:
    """The training batches the config asks for (``augment.backend``)."""
    common = {
        "augment": config["augment"],
        "crop": config["train"]["crop"],
        "batch_size": config["train"]["batch_size"],
        "device": device,
        "seed": seed,
    }
    if config["augment"]["backend"] == "albumentations":
        return AlbumentationsBatches(
            images,
            masks,
            rows,
            normalizer,
            num_workers=config["run"]["num_workers"],
            **common,
        )
    return TensorBatches(
        images,
        masks,
        rows,
        normalizer,
        on_device=device.type == "cuda" and _fits_on_device(config, images, device),
        **common,
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
