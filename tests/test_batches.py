"""Training batches: the one-gather crop + D4, their randomness and resume."""

import numpy as np
import pytest
import torch

from landcover.batches import TensorBatches, crop_and_turn, upload
from landcover.errors import ConfigError
from landcover.inference import network_inputs, predict_modes
from landcover.pixels import Normalizer, d4_views, mask_proportions, pixels_to_tensor

AUGMENT = {
    "albumentations": [],
    "d4": True,
    "gain": 0.05,
    "offset": 0.02,
    "haze": 0.0,
    "gamma": 0.0,
    "season": 0.0,
    "radiometric_shift": 0.0,
}
IDENTITY = Normalizer(mean=[0.0] * 4, std=[1.0] * 4, log=False)


def _data(n: int = 12, size: int = 16, seed: int = 0):
    """Pixels whose channel 0 encodes the mask, so a crop/turn can be checked pixel by pixel."""
    rng = np.random.default_rng(seed)
    masks = rng.integers(0, 10, size=(n, size, size), dtype=np.uint8)
    images = rng.integers(0, 65535, size=(n, 4, size, size), dtype=np.uint16)
    images[:, 0] = masks
    return images, masks


def test_crop_and_turn_gives_the_eight_d4_views_with_masks_following():
    images, masks = _data(n=1, size=6)
    x = pixels_to_tensor(images)
    reference = [v[0] for v in d4_views(x.long(), 8)]
    seen = []
    for view in range(8):
        out, mask = crop_and_turn(
            x, torch.from_numpy(masks), *(torch.zeros(1, dtype=torch.long),) * 3, 6,
            torch.tensor([view]),
        )  # fmt: skip
        assert out.shape == (1, 4, 6, 6) and mask.shape == (1, 6, 6)
        assert torch.equal(out[0, 0].long(), mask[0].long())  # the mask moved with the pixels
        match = [k for k, ref in enumerate(reference) if torch.equal(out[0].long(), ref)]
        assert len(match) == 1
        seen += match
    assert sorted(seen) == list(range(8))


def test_crop_and_turn_windows_per_sample():
    images, masks = _data(n=3, size=10)
    x, m = pixels_to_tensor(images), torch.from_numpy(masks)
    samples, top, left = torch.tensor([2, 0, 2]), torch.tensor([0, 3, 6]), torch.tensor([5, 1, 0])
    out, mask = crop_and_turn(x, m, samples, top, left, 4, torch.zeros(3, dtype=torch.long))
    for b in range(3):
        s, t, lft = samples[b], top[b], left[b]
        assert torch.equal(out[b], x[s, :, t : t + 4, lft : lft + 4])
        assert torch.equal(mask[b], m[s, t : t + 4, lft : lft + 4])


def test_normalizer_reads_uint16_above_int16_range():
    pixels = np.array([0, 1, 32767, 32768, 40000, 65535], dtype=np.uint16).reshape(1, 1, 2, 3)
    pixels = np.repeat(pixels, 4, axis=1)
    norm = Normalizer(mean=[5.0, 6.0, 7.0, 8.0], std=[2.0, 2.0, 3.0, 3.0], log=True)
    got = norm(pixels_to_tensor(pixels)).numpy()
    mean, std = np.array(norm.mean)[:, None, None], np.array(norm.std)[:, None, None]
    np.testing.assert_allclose(got[0], (np.log1p(pixels[0].astype(np.float64)) - mean) / std, 1e-6)


def _jitter_of(batch: dict) -> np.ndarray:
    """Per-sample (scale, shift) of channel 0 against the mask it encodes; fails unless the
    pixels are exactly the mask, scaled and shifted (so the mask followed every crop/turn)."""
    fits = []
    for image, mask in zip(batch["image"][:, 0].numpy(), batch["mask"].numpy(), strict=True):
        x, y = mask.ravel().astype(np.float64), image.ravel().astype(np.float64)
        scale, shift = np.polyfit(x, y, 1)
        np.testing.assert_allclose(y, scale * x + shift, atol=1e-4)
        fits.append((scale, shift))
    return np.array(fits)


def _tensor_batches(images, masks, *, on_device: bool, seed: int = 3, crop: int = 8):
    return TensorBatches(
        images,
        masks,
        np.arange(len(images)),
        IDENTITY,
        augment=AUGMENT,
        crop=crop,
        batch_size=4,
        device=torch.device("cpu"),
        seed=seed,
        on_device=on_device,
    )


def test_tensor_batches_targets_views_and_jitter():
    images, masks = _data(n=40)
    batches = _tensor_batches(images, masks, on_device=False, crop=0)
    assert len(batches) == 10
    views = torch.stack(d4_views(torch.from_numpy(masks)[:, None].long(), 8))[:, :, 0]
    seen_views = set()  # views: (8, n, H, W)
    for batch in batches.epoch(30):
        image, mask, target = batch["image"], batch["mask"], batch["target"]
        assert image.shape == (4, 4, 16, 16) and mask.dtype == torch.int64
        for b in range(4):
            np.testing.assert_allclose(target[b].numpy(), mask_proportions(mask[b].numpy()))
        jitter = _jitter_of(batch)
        assert len(np.unique(jitter[:, 0].round(6))) == 4  # each sample its own gain
        assert np.all(np.abs(np.log(jitter[:, 0])) < 5 * AUGMENT["gain"])
        for sample in mask:  # whole patches: each is one of the 8 views of one source patch
            (hit,) = torch.nonzero((views == sample).flatten(2).all(dim=2)).tolist()
            seen_views.add(hit[0])
    assert seen_views == set(range(8))


def test_tensor_batches_same_with_data_resident_or_gathered_and_resume_exactly():
    images, masks = _data(n=20)
    host = list(_tensor_batches(images, masks, on_device=False).epoch(7))
    resident = list(_tensor_batches(images, masks, on_device=True).epoch(7))
    for a, b in zip(host, resident, strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # stop after 3 batches, save the state, continue in a fresh object: same batches
    first = _tensor_batches(images, masks, on_device=False)
    list(first.epoch(3))
    later = _tensor_batches(images, masks, on_device=False, seed=99)
    later.set_state(first.state())
    for a, b in zip(list(first.epoch(4)), list(later.epoch(4)), strict=True):
        assert torch.equal(a["image"], b["image"])
    # a different seed draws different batches
    other = next(_tensor_batches(images, masks, on_device=False, seed=4).epoch(1))
    assert not torch.equal(other["image"], host[0]["image"])


def test_inputs_normalise_on_the_device_like_the_formula():
    images, _ = _data(n=2)
    config = {"run": {"channels_last": True}}
    norm = Normalizer(mean=[1.0, 2.0, 3.0, 4.0], std=[2.0] * 4, log=True)
    x = network_inputs(images, norm, torch.device("cpu"), config)
    assert x.is_contiguous(memory_format=torch.channels_last) and x.dtype == torch.float32
    want = (np.log1p(images.astype(np.float64)) - np.array(norm.mean)[:, None, None]) / 2.0
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-5, atol=1e-5)


def test_upload_in_chunks_keeps_every_row_in_order():
    images, masks = _data(n=11)
    rows = np.array([0, 2, 3, 5, 8, 9, 10])
    pixels = upload(images, rows, torch.device("cpu"), chunk=3)
    labels = upload(masks, rows, torch.device("cpu"), chunk=3)
    assert torch.equal(pixels, pixels_to_tensor(images[rows]))
    assert torch.equal(labels, torch.from_numpy(masks[rows]))


def test_prediction_from_patches_on_the_device_equals_prediction_from_the_cache():
    images, _ = _data(n=9)
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, 10, 3, padding=1)
    config = {"predict": {"batch_size": 4}, "run": {"amp": True, "channels_last": True}}
    norm = Normalizer(mean=[9.0] * 4, std=[2.0] * 4, log=True)
    rows = np.array([7, 1, 4, 2, 8])
    device = torch.device("cpu")
    common = {"tta": 2, "modes": ("hard", "soft"), "crop": 8}
    from_cache = predict_modes(model, images, rows, norm, config, device, **common)
    resident = upload(images, rows, device)
    from_device = predict_modes(model, resident, np.arange(5), norm, config, device, **common)
    for mode in ("hard", "soft"):
        np.testing.assert_array_equal(from_cache[mode], from_device[mode])
    assert not np.allclose(from_cache["soft"][0], from_cache["soft"][1])


def test_reflectance_augmentations_are_physical_and_seeded():
    """Haze pulls every band toward a bluish airlight, the season lowers NIR and raises red,
    gamma bends reflectances; draws come from the batch generator, so they repeat by seed."""
    from landcover.augment import AIRLIGHT, draw_augment, reflectance_augment

    augment = {**AUGMENT, "gain": 0.0, "offset": 0.0, "haze": 0.3, "gamma": 0.1, "season": 0.2}
    draws = [draw_augment(torch.Generator().manual_seed(3), 6, (0, 0), 4, augment) for _ in "ab"]
    assert all(
        torch.equal(draws[0].radiometry[k], draws[1].radiometry[k]) for k in draws[0].radiometry
    )
    x = torch.full((6, 4, 2, 2), 500.0)
    only = {k: draws[0].radiometry[k] for k in ("haze",)}
    hazy = reflectance_augment(only)(x)
    t = only["haze"][:, None, None, None]
    torch.testing.assert_close(hazy, (1 - t) * x + t * torch.tensor(AIRLIGHT).view(1, 4, 1, 1))
    season = reflectance_augment({"season": draws[0].radiometry["season"]})(x)
    assert (season[:, 3] <= 500).all() and (season[:, 2] >= 500).all()
    assert reflectance_augment({}) is None


def test_shift_augmentation_draws_the_shift_tests_changes():
    """augment.shift changes a sample with its probability, by one of the shift test's gain,
    offset or haze at the shift test's ranges (one per-band affine map each)."""
    from landcover.augment import AIRLIGHT, GAIN, HAZE, OFFSET, draw_augment, reflectance_augment

    off = draw_augment(torch.Generator().manual_seed(0), 8, (0, 0), 4, AUGMENT)
    assert "shift" not in off.radiometry
    n = 600
    draws = draw_augment(
        torch.Generator().manual_seed(0), n, (0, 0), 4, {**AUGMENT, "radiometric_shift": 1.0}
    )
    a, b = draws.radiometry["shift"].unbind(1)
    air = torch.tensor(AIRLIGHT)
    gain = (b == 0).all(1) & (a != 1).any(1)
    offset = (a == 1).all(1) & (b != 0).any(1)
    t = 1 - a[:, 0]
    haze = torch.isclose(b, t[:, None] * air).all(1) & (a == a[:, :1]).all(1) & (t > 0)
    assert (gain.int() + offset.int() + haze.int() == 1).all()  # every sample, one change
    assert min(gain.sum(), offset.sum(), haze.sum()) > n / 4  # each a third of the time
    assert GAIN[0] <= a[gain].min() and a[gain].max() <= GAIN[1]
    assert 0 <= b[offset].min() and b[offset].max() <= OFFSET
    assert HAZE[0] <= t[haze].min() and t[haze].max() <= HAZE[1]
    x = torch.full((n, 4, 2, 2), 500.0)
    torch.testing.assert_close(
        reflectance_augment(draws.radiometry)(x), a[:, :, None, None] * x + b[:, :, None, None]
    )
    half = draw_augment(
        torch.Generator().manual_seed(1), n, (0, 0), 4, {**AUGMENT, "radiometric_shift": 0.5}
    )
    a, b = half.radiometry["shift"].unbind(1)
    kept = (a == 1).all(1) & (b == 0).all(1)
    assert 0.4 < kept.float().mean() < 0.6


def test_per_image_normaliser_takes_out_brightness():
    images = np.random.default_rng(0).integers(200, 3000, size=(2, 4, 16, 16), dtype=np.uint16)
    norm = Normalizer(mean=[0.0] * 4, std=[1.0] * 4, log=True, per_image=True)
    brighter = np.clip(images.astype(np.float64) * 1.3, 0, 65535).astype(np.uint16)
    a, b = norm(pixels_to_tensor(images)), norm(pixels_to_tensor(brighter))
    torch.testing.assert_close(a.mean(dim=(2, 3)), torch.zeros(2, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(a, b, atol=0.05, rtol=0)  # a gain is an offset of the logs


def _dark_data(n: int = 16, size: int = 32, seed: int = 0):
    """Patches whose dark levels differ: a per-patch, per-band lift of 0-600 on a 200-3000 base."""
    rng = np.random.default_rng(seed)
    images = rng.integers(200, 3000, size=(n, 4, size, size)) + rng.integers(0, 600, (n, 4, 1, 1))
    return images.astype(np.uint16), np.zeros((n, size, size), np.uint8)


def _whole_patch_batches(images, masks, augment: dict, bound=None, on_device: bool = False):
    return TensorBatches(
        images,
        masks,
        np.arange(len(images)),
        IDENTITY,
        augment={**augment, "d4": False, "gain": 0.0, "offset": 0.0},
        crop=0,
        batch_size=4,
        device=torch.device("cpu"),
        seed=5,
        on_device=on_device,
        bound=bound,
    )


def test_corrected_batches_are_changed_patches_corrected_as_prediction_corrects_them():
    """train.dark_corrected: each sample, after its change (the shift test's gain, offset or
    haze; or haze, gamma and season together), is what ``radiometry.dark_corrected`` makes of the
    changed patch: lowered onto the bound where its dark level lies above it, as it is where
    not. The bound draws nothing: the same seed draws the same changes with and without it."""
    from landcover.radiometry import dark_corrected, dark_levels

    images, masks = _dark_data()
    bound = np.median(dark_levels(images), axis=0)
    for augment, tolerance in (
        ({**AUGMENT, "radiometric_shift": 1.0}, 1.5),  # affine: exact but for three roundings
        ({**AUGMENT, "haze": 0.3, "gamma": 0.1, "season": 0.2}, 2.5),
    ):
        plain = _whole_patch_batches(images, masks, augment).epoch(8)
        corrected = _whole_patch_batches(images, masks, augment, bound).epoch(8)
        lowered = kept = 0
        for a, b in zip(plain, corrected, strict=True):
            changed = np.clip(np.rint(a["image"].numpy()), 1, 65535).astype(np.uint16)
            expected = dark_corrected(changed, bound).astype(np.float64)
            got = b["image"].numpy().astype(np.float64)
            np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
            assert torch.equal(a["mask"], b["mask"])
            same = (a["image"] == b["image"]).flatten(2).all(2)
            kept += int(same.sum())
            lowered += int((~same).sum())
            above = dark_levels(changed) > bound + tolerance
            assert not (same.numpy() & above).any()  # every patch above the bound came down
        assert kept > 10 and lowered > 10, (kept, lowered)
    # the same batches whether the patches are resident on the device or gathered per batch
    host = _whole_patch_batches(images, masks, {**AUGMENT, "radiometric_shift": 1.0}, bound).epoch(
        4
    )
    resident = _whole_patch_batches(
        images, masks, {**AUGMENT, "radiometric_shift": 1.0}, bound, True
    )
    for a, b in zip(host, resident.epoch(4), strict=True):
        assert torch.equal(a["image"], b["image"])


def test_relative_channels_take_out_a_gain_and_keep_the_bands():
    """``normalize.patch_relative``: the four standardised bands as they were, then each band
    less the image's own mean of it, which a per-band gain of the whole image leaves (in log
    space a gain is a constant); the jitter scales a band's relative channel and does not
    shift it."""
    from landcover.augment import apply_augment

    images = np.random.default_rng(0).integers(200, 3000, size=(2, 4, 16, 16), dtype=np.uint16)
    stats = {"mean": [6.0, 6.5, 7.0, 7.5], "std": [0.5, 0.6, 0.7, 0.8], "log": True}
    plain, relative = Normalizer(**stats), Normalizer(**stats, patch_relative=True)
    a = relative(pixels_to_tensor(images))
    assert a.shape == (2, 8, 16, 16)
    torch.testing.assert_close(a[:, :4], plain(pixels_to_tensor(images)))
    torch.testing.assert_close(a[:, 4:].mean(dim=(2, 3)), torch.zeros(2, 4), atol=1e-5, rtol=0)
    gain = np.array([1.15, 0.85, 1.1, 0.9])[None, :, None, None]
    changed = relative(pixels_to_tensor((images * gain).round().astype(np.uint16)))
    assert (changed[:, :4] - a[:, :4]).abs().mean() > 0.1  # the bands see the gain
    torch.testing.assert_close(changed[:, 4:], a[:, 4:], atol=0.01, rtol=0)  # these do not
    assert Normalizer(**relative.to_dict()) == relative
    noise = torch.tensor(np.random.default_rng(1).normal(size=(2, 2, 4)), dtype=torch.float32)
    jittered = apply_augment(a, {"jitter": noise}, AUGMENT)
    scale = torch.exp(AUGMENT["gain"] * noise[:, 0])[:, :, None, None]
    torch.testing.assert_close(jittered[:, 4:], a[:, 4:] * scale)
    torch.testing.assert_close(
        jittered[:, :4], a[:, :4] * scale + AUGMENT["offset"] * noise[:, 1, :, None, None]
    )


def test_albumentations_transforms_run_by_name_on_the_host_before_the_rest():
    """A transform named in augment.albumentations changes each batch's patches and masks
    before the device's crop, turn and jitter (here a flip of every patch, so each batch is the
    plain one flipped); the picks and the other draws stay those of a run without it."""
    images, masks = _data(n=12)
    images = np.clip(images, 1, 9_000)  # reflectance within (0, 1]: nothing clipped
    plain_settings = {**AUGMENT, "d4": False, "gain": 0.0, "offset": 0.0}
    flipped_settings = {**plain_settings, "albumentations": [{"name": "HorizontalFlip", "p": 1}]}

    def batches(augment: dict, on_device: bool = False) -> list[dict]:
        made = TensorBatches(
            images, masks, np.arange(12), IDENTITY, augment=augment, crop=0, batch_size=4,
            device=torch.device("cpu"), seed=5, on_device=on_device,
        )  # fmt: skip
        return list(made.epoch(3))

    plain, flipped = batches(plain_settings), batches(flipped_settings, on_device=True)
    for a, b in zip(plain, flipped, strict=True):
        assert torch.equal(a["image"].flip(-1), b["image"])
        assert torch.equal(a["mask"].flip(-1), b["mask"])
    with pytest.raises(ConfigError, match="no albumentations transform 'Nope'"):
        batches({**plain_settings, "albumentations": [{"name": "Nope"}]})
    with pytest.raises(ConfigError, match="size"):
        batches({**plain_settings, "albumentations": [{"name": "Resize", "height": 8, "width": 8}]})
