"""The LightGBM member's per-pixel features: each set's columns, what a change of radiometry
does to them, and the stores kept apart per set."""

import numpy as np
import pytest

from landcover.config import CONFIG_DIR, read_yaml
from landcover.members.gbm_features import BANDS, BASIC, FeatureSpec, pixel_features
from landcover.members.gbm_stores import strided_features, training_samples


def _gbm(**changes) -> dict:
    """The base config's ``gbm`` section with ``changes``."""
    return {**read_yaml(CONFIG_DIR / "base.yaml")["gbm"], **changes}


def _images(seed: int = 0, n: int = 3, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(200, 4000, size=(n, 4, size, size)).astype(np.uint16)


def _mapped(folder, images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images and masks as a cache holds them: memory-mapped .npy files (stores go beside)."""
    np.save(folder / "train_images.npy", images)
    np.save(folder / "train_masks.npy", masks)
    return tuple(np.load(folder / f"train_{n}.npy", mmap_mode="r") for n in ("images", "masks"))


def test_each_set_has_its_named_columns():
    images = _images()
    sets = (BASIC, FeatureSpec(per_image=True), FeatureSpec(texture=True))
    for spec in (*sets, FeatureSpec(texture=True, patch_relative=True)):
        feats = pixel_features(images, 1, spec)
        assert feats.shape == (3, 32, 32, len(spec.names)) and feats.dtype == np.float32
        assert len(set(spec.names)) == len(spec.names)
        assert np.isfinite(feats).all()
    assert len(FeatureSpec(texture=True).names) == len(BASIC.names) + 9
    assert len(FeatureSpec(texture=True, patch_relative=True).names) == len(BASIC.names) + 13
    strided = pixel_features(images, 4, FeatureSpec(texture=True))
    full = pixel_features(images, 1, FeatureSpec(texture=True))
    np.testing.assert_array_equal(strided, full[:, 2::4, 2::4])


def test_per_image_features_ignore_a_gain_and_texture_ignores_a_uniform_one():
    """log(g r) = log g + log r: the per-image set takes each band's own mean out, so a
    per-band gain leaves its log bands and local means unchanged; the local deviation of the
    log brightness does not move under a gain common to the bands."""
    images = _images()
    gain = np.array([1.3, 0.8, 1.1, 0.9])[None, :, None, None]
    changed = np.clip(np.rint(images * gain), 1, 65535).astype(np.uint16)
    spec = FeatureSpec(per_image=True, texture=True)
    names = list(spec.names)
    before, after = pixel_features(images, 1, spec), pixel_features(changed, 1, spec)
    for name in ("log_b", "log_nir", "mean17_r", "mean51_g"):
        i = names.index(name)
        np.testing.assert_allclose(after[..., i], before[..., i], atol=1e-2)
    basic = list(BASIC.names).index("log_b")
    moved = (
        pixel_features(changed, 1, BASIC)[..., basic] - pixel_features(images, 1, BASIC)[..., basic]
    )
    assert abs(float(moved.mean()) - np.log(1.3)) < 0.01  # the basic set sees the gain
    uniform = np.clip(np.rint(images * 1.25), 1, 65535).astype(np.uint16)
    std = names.index("std5_brightness")
    np.testing.assert_allclose(
        pixel_features(uniform, 1, spec)[..., std], before[..., std], atol=1e-2
    )


def test_relative_bands_ignore_a_patchs_gain_beside_the_bands_as_they_are():
    """``gbm.patch_relative``: each log band less the patch's mean of it, added after the other
    features, which stay as they were: a per-band gain of the patch moves the log bands by
    log g and leaves the relative ones where they were."""
    images = _images()
    gain = np.array([1.15, 0.85, 1.1, 0.9])[None, :, None, None]
    changed = np.clip(np.rint(images * gain), 1, 65535).astype(np.uint16)
    spec = FeatureSpec(texture=True, patch_relative=True)
    names, before = list(spec.names), pixel_features(images, 1, spec)
    after = pixel_features(changed, 1, spec)
    np.testing.assert_array_equal(
        before[..., : len(names) - 4], pixel_features(images, 1, FeatureSpec(texture=True))
    )
    for band, g in zip(("b", "g", "r", "nir"), gain.ravel(), strict=True):
        i, j = names.index(f"rel_{band}"), names.index(f"log_{band}")
        np.testing.assert_allclose(after[..., i], before[..., i], atol=5e-3)  # uint16 rounding
        assert abs(float((after[..., j] - before[..., j]).mean()) - np.log(g)) < 2e-3
        np.testing.assert_allclose(before[..., i].mean(axis=(1, 2)), 0, atol=1e-4)
    assert spec.tag == "-texture-rel" and FeatureSpec.from_config(_gbm()).tag == ("-texture")


def test_relative_context_ignores_a_patchs_gain_after_the_relative_bands():
    """``gbm.patch_relative_context``: each local mean of the log bands (5, 17 and, with the texture
    set, 51 pixels) less the patch's mean of the band, added last; the features before stay
    byte for byte, and a per-band gain of the patch leaves the new ones where they were while
    the local means themselves move by log g."""
    images = _images()
    gain = np.array([0.87, 1.12, 0.9, 1.14])[None, :, None, None]
    changed = np.clip(np.rint(images * gain), 1, 65535).astype(np.uint16)
    spec = FeatureSpec(texture=True, patch_relative=True, patch_relative_context=True)
    names, before = list(spec.names), pixel_features(images, 1, spec)
    after = pixel_features(changed, 1, spec)
    assert len(names) == len(FeatureSpec(texture=True, patch_relative=True).names) + 12
    np.testing.assert_array_equal(
        before[..., : len(names) - 12],
        pixel_features(images, 1, FeatureSpec(texture=True, patch_relative=True)),
    )
    for size in (5, 17, 51):
        for band, g in zip(("b", "g", "r", "nir"), gain.ravel(), strict=True):
            i, j = names.index(f"relmean{size}_{band}"), names.index(f"mean{size}_{band}")
            np.testing.assert_allclose(after[..., i], before[..., i], atol=5e-3)
            assert abs(float((after[..., j] - before[..., j]).mean()) - np.log(g)) < 2e-3
            log_band = np.log1p(images[:, BANDS.index(band)].astype(np.float32))
            centred = before[..., j] - log_band.mean(axis=(1, 2))[:, None, None]
            np.testing.assert_allclose(before[..., i], centred, atol=1e-5)
    without_texture = FeatureSpec(patch_relative_context=True)
    assert [n for n in without_texture.names if n.startswith("relmean")] == [
        f"relmean{s}_{b}" for s in (5, 17) for b in ("b", "g", "r", "nir")
    ]
    assert spec.tag == "-texture-rel-relctx"
    assert FeatureSpec.from_config(_gbm(texture=False, patch_relative_context=True)) == (
        without_texture
    )


def test_bands_above_the_dark_level_ignore_a_patchs_gain_and_offset():
    """``gbm.above_dark_level``: each band above the patch's dark level (its 1st percentile), in
    log, less the patch's mean of that, added last; the features before stay byte for byte.
    A per-band ``a x + b`` of the whole patch (the shift test's gain, offset, haze and season
    changes) leaves the new ones where they were, while the relative bands move under an
    offset; a patch with another dark level is not the same patch to them."""
    from landcover.radiometry import dark_levels
    from landcover.shift import shifted

    images = _images(n=4, size=48)
    spec = FeatureSpec(
        texture=True, patch_relative=True, patch_relative_context=True, above_dark_level=True
    )
    names, before = list(spec.names), pixel_features(images, 1, spec)
    assert before.dtype == np.float32  # the stores' type, as every other set's
    previous = FeatureSpec(texture=True, patch_relative=True, patch_relative_context=True)
    assert names[:-4] == list(previous.names)
    assert names[-4:] == [f"drel_{b}" for b in BANDS]
    np.testing.assert_array_equal(before[..., :-4], pixel_features(images, 1, previous))
    dark = dark_levels(images)[:, :, None, None]
    above = np.log1p(np.maximum(images.astype(np.float64) - dark, 0.0))
    expected = above - above.mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(before[..., -4:], expected.transpose(0, 2, 3, 1), atol=1e-5)
    ids = np.arange(len(images)) + 1
    for kind in ("gain", "offset", "haze", "season", "combined"):
        after = pixel_features(shifted(images, ids, kind), 1, spec)
        moved = np.abs(after[..., -4:] - before[..., -4:]).mean()
        assert moved < 0.01, (kind, moved)  # uint16 rounding and the log1p's +1
        if kind == "offset":
            rel = [names.index(f"rel_{b}") for b in BANDS]
            assert np.abs(after[..., rel] - before[..., rel]).mean() > 10 * moved
    darker = images.copy()
    darker[:, :, :4, :4] = 1  # a dark corner moves the dark level: not a change of radiometry
    assert np.abs(pixel_features(darker, 1, spec)[..., -4:] - before[..., -4:]).mean() > 0.05
    assert spec.tag == "-texture-rel-relctx-drel"
    assert FeatureSpec.from_config(_gbm(texture=False, above_dark_level=True)) == FeatureSpec(
        above_dark_level=True
    )


def test_stores_of_different_sets_are_kept_apart(tmp_path):
    images = _images(n=5)
    masks = np.random.default_rng(1).integers(0, 10, size=(5, 32, 32)).astype(np.uint8)
    mapped, mapped_masks = _mapped(tmp_path, images, masks)
    texture = FeatureSpec(texture=True)
    for spec in (BASIC, texture):
        store = strided_features(mapped, 4, 1, spec)
        np.testing.assert_array_equal(store, pixel_features(images, 4, spec))
        x, y = training_samples(mapped, mapped_masks, 16, 0, 1, spec)
        assert x.shape == (5, 16, len(spec.names)) and y.shape == (5, 16)
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 4 and sum("-texture" in f for f in folders) == 2


def test_the_feature_set_follows_the_config_and_names_its_stores():
    assert FeatureSpec.from_config(_gbm()) == FeatureSpec(texture=True)  # the base's
    assert FeatureSpec.from_config(_gbm(texture=False)) == BASIC
    assert FeatureSpec.from_config(_gbm(per_image=True)).tag == "-relative-texture"


def test_radiometric_copies_add_changed_pixels_after_the_patches_own(tmp_path):
    """``gbm.radiometric_copies``: the first samples are those of the set without copies (its
    pins hold), then as many from each changed copy: other pixels, other radiometry, the
    same on the memory-mapped store as in memory, and kept in a store of their own."""
    from landcover.shift import randomised

    images = _images(n=4)
    masks = np.random.default_rng(1).integers(0, 10, size=(4, 32, 32)).astype(np.uint8)
    spec = FeatureSpec(texture=True)
    x0, y0 = training_samples(images, masks, 16, 0, 1, spec)
    x2, y2 = training_samples(images, masks, 16, 0, 1, spec, copies=2)
    assert x2.shape == (4, 48, len(spec.names)) and y2.shape == (4, 48)
    np.testing.assert_array_equal(x2[:, :16], x0)
    np.testing.assert_array_equal(y2[:, :16], y0)
    changed = randomised(images, np.arange(4), 0, 1)
    assert changed.dtype == np.uint16 and not np.array_equal(changed, images)
    np.testing.assert_array_equal(changed, randomised(images, np.arange(4), 0, 1))
    assert not np.array_equal(changed, randomised(images, np.arange(4), 0, 2))
    log_b = list(spec.names).index("log_b")
    assert not np.allclose(x2[:, 16:32, log_b], x2[:, :16, log_b])
    mapped, mapped_masks = _mapped(tmp_path, images, masks)
    xs, ys = training_samples(mapped, mapped_masks, 16, 0, 1, spec, copies=2)
    np.testing.assert_array_equal(xs, x2)
    np.testing.assert_array_equal(ys, y2)
    training_samples(mapped, mapped_masks, 16, 0, 1, spec)
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert folders == ["gbm-samples-v1-p16-s0-texture", "gbm-samples-v1-p16-s0-texture-c2"]


def test_radiometric_kinds_choose_the_copies_changes(tmp_path):
    """``gbm.radiometric_kinds``: the copies' changes are drawn from these (the season change
    too, if asked), the patches' own pixels stay as they were, and the store is kept apart."""
    from landcover.shift import randomised

    images = _images(n=4)
    season = randomised(images, np.arange(4), 0, 1, ("season",))
    assert np.array_equal(season[:, :2], images[:, :2])  # blue and green untouched
    assert (season[:, 3] <= images[:, 3]).all() and (season[:, 2] >= images[:, 2]).all()
    with pytest.raises(ValueError, match="training changes must be some of"):
        randomised(images, np.arange(4), 0, 1, ("none",))
    masks = np.random.default_rng(1).integers(0, 10, size=(4, 32, 32)).astype(np.uint8)
    mapped, mapped_masks = _mapped(tmp_path, images, masks)
    spec = FeatureSpec(texture=True)
    x, _ = training_samples(mapped, mapped_masks, 16, 0, 1, spec, 1)
    xk, _ = training_samples(mapped, mapped_masks, 16, 0, 1, spec, 1, ("gain", "season"))
    np.testing.assert_array_equal(xk[:, :16], x[:, :16])
    assert not np.allclose(xk[:, 16:], x[:, 16:])
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert folders == [
        "gbm-samples-v1-p16-s0-texture-c1",
        "gbm-samples-v1-p16-s0-texture-c1-kgain-season",
    ]


def test_dark_corrected_training_lowers_patches_and_copies_onto_the_bound(tmp_path):
    """``train.dark_corrected``: every training patch and changed copy is dark-level
    corrected onto the fold's bound before its features are drawn, as ``predict.dark_level``
    corrects a patch before a fold model predicts it; a patch darker than the bound is left as
    it is, and each bound gets a store of its own."""
    from landcover.radiometry import dark_corrected, dark_levels
    from landcover.shift import randomised

    images = _images(n=4)
    images[1] += 300  # one patch brighter in its darkest pixels than the others
    masks = np.random.default_rng(1).integers(0, 10, size=(4, 32, 32)).astype(np.uint8)
    spec = FeatureSpec(texture=True, patch_relative=True)
    bound = np.sort(dark_levels(images), axis=0)[2]  # the third darkest patch's, per band
    x, y = training_samples(images, masks, 16, 0, 1, spec, copies=1, kinds=("offset",))
    xd, yd = training_samples(images, masks, 16, 0, 1, spec, 1, ("offset",), bound)
    np.testing.assert_array_equal(yd, y)  # the same pixels are drawn
    levels = dark_levels(images)
    darker = np.flatnonzero((levels <= bound).all(axis=1))
    assert len(darker) >= 2 and 1 not in darker
    np.testing.assert_array_equal(xd[darker, :16], x[darker, :16])
    assert not np.allclose(xd[1, :16], x[1, :16])
    # each version's features are those of its corrected images, the copies' too
    changed = randomised(images, np.arange(4), 0, 1, ("offset",))
    assert (dark_levels(changed) > bound).any(axis=1).all()  # every copy lifted past it
    expected = pixel_features(dark_corrected(changed, bound), 1, spec).reshape(4, 32 * 32, -1)
    picks = np.stack(
        [np.random.default_rng([0, row, 1]).integers(0, 32 * 32, size=16) for row in range(4)]
    )
    np.testing.assert_array_equal(xd[:, 16:], expected[np.arange(4)[:, None], picks])
    settled = np.minimum(dark_levels(changed), bound)  # lowered onto it, or left below it
    assert np.abs(dark_levels(dark_corrected(changed, bound)) - settled).max() <= 1
    mapped, mapped_masks = _mapped(tmp_path, images, masks)
    xs, _ = training_samples(mapped, mapped_masks, 16, 0, 1, spec, 1, ("offset",), bound)
    np.testing.assert_array_equal(xs, xd)
    training_samples(mapped, mapped_masks, 16, 0, 1, spec, 1, ("offset",), bound + 1e-3)
    folders = [p.name for p in tmp_path.iterdir() if p.is_dir()]
    assert len(folders) == 2 and all("-dark" in name for name in folders)  # a store a bound
