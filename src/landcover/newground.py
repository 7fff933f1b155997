"""The class-mix shift test, run: every member of a blend, and the blend, scored on held-out
patches resampled to other regions' class mixes (``classmix.py``), each region played as a
test region.

Every held-out patch is predicted by the fold model that did not train on it, as per-pixel
probabilities on a grid (``FoldModel.predict_pixels``), its inputs prepared as the member's own
``predict`` settings say (each patch's dark level: per patch, the same in every region). With
a prior adaptation (``priors.METHODS``) each region's class prior is then re-estimated from the
members' posteriors, each fold model under its own source prior, and every pixel re-weighted
before it is counted.

The blend is tuned as ``blend.py`` tunes it, on the validation folds played the same way (each
fold's rows one region), and every fold's rows are blended by the blend tuned without that fold
(nested), so nothing a region is scored on was tuned on those rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_path
from .blending import Stack, blend, fit_blend
from .classmix import Region
from .constants import N_CLASSES
from .fold_plan import FoldPlan
from .members.base import on_grid
from .metric import kl_per_sample
from .priors import Calibration, FoldShift, adapt_region
from .radiometry import FoldRadiometry


@dataclass
class MemberPixels:
    """One member's held-out pixels: the predictor's member, its settings for the test."""

    member: object  # predictor.Member
    images: np.ndarray  # the training patches (cache order)
    folds: np.ndarray  # each row's held-out fold
    plan: FoldPlan
    stride: int
    dark_level: bool
    cache: Path | None = None  # a folder keeping the pixels between runs
    _pixels: np.ndarray | None = None

    def pixels(self) -> np.ndarray:
        """(n, P, 10) probabilities of every held-out patch, each by its own fold model, its
        dark level first brought within that fold's training patches' if asked (per patch:
        the same in every region)."""
        if self._pixels is None and self.cached is not None and self.cached.is_file():
            self._pixels = np.load(self.cached)
        if self._pixels is not None:
            return self._pixels
        out = None
        for k, model in enumerate(self.member.folds):
            rows = np.flatnonzero(self.folds == k)
            radiometry = FoldRadiometry.of_fold(
                self.images, self.plan.train_rows(k), self.dark_level
            )
            images = radiometry.prepared(self.images, rows)
            probs = model.predict_pixels(images, np.arange(len(rows)), self.stride)
            if out is None:
                out = np.zeros((len(self.folds), *probs.shape[1:]), dtype=np.float32)
            out[rows] = probs
        self._pixels = out
        if self.cached is not None:
            with atomic_path(self.cached) as tmp, tmp.open("wb") as handle:
                np.save(handle, out)
        return out

    @property
    def cached(self) -> Path | None:
        """Where ``cache`` keeps this member's pixels: named by what determines them (the
        experiment's files and predict settings, the views, the stride, the dark level)."""
        if self.cache is None:
            return None
        member = self.member
        stamps = [(p.name, p.stat().st_mtime_ns) for p in sorted(Path(member.path).rglob("*.json"))]
        key = {
            "path": str(Path(member.path).resolve()),
            "stamps": stamps,
            "predict": {k: v for k, v in member.config["predict"].items() if k != "mode"},
            "stride": self.stride,
            "dark_level": self.dark_level,
            "grid": "centred",
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return Path(self.cache) / f"{member.name}-{digest}.npy"


def counted(probs: np.ndarray, hard: bool) -> np.ndarray:
    """(n, 10) proportions of (n, P, 10) pixel probabilities: their mean, or argmax counts."""
    if hard and probs.shape[1] > 1:
        return np.eye(N_CLASSES)[probs.argmax(axis=2)].mean(axis=1)
    return probs.mean(axis=1, dtype=np.float64)


def fold_sources(labels: np.ndarray, plan: FoldPlan) -> list[np.ndarray]:
    """Each fold's training prior (10,): the mean label of its training rows."""
    return [np.asarray(labels)[plan.train_rows(k)].mean(axis=0) for k in range(plan.n_folds)]


CALIBRATION_PIXELS = 200_000  # at most this many held-out pixels fit a calibration


def fold_shifts(
    method: str,
    pixels: np.ndarray,
    masks: np.ndarray,
    folds: np.ndarray,
    sources: list[np.ndarray],
) -> list[FoldShift]:
    """Each fold model's ``FoldShift`` for ``method``: plain EM starts from its training prior
    (``sources``); calibrated EM and BBSE learn from the other folds' held-out pixels
    (``pixels`` (n, P, 10), each row by its own fold model, ``masks`` (n, P) their labels)."""
    shifts = []
    for k, source in enumerate(sources):
        if method == "em":
            shifts.append(FoldShift(source))
            continue
        other = folds != k
        probs = pixels[other].reshape(-1, N_CLASSES)
        labels = masks[other].reshape(-1).astype(np.int64)
        step = max(1, len(probs) // CALIBRATION_PIXELS)
        probs, labels = probs[::step], labels[::step]
        seen = np.bincount(labels, minlength=N_CLASSES) / len(labels)
        if method == "em-calibrated":
            shifts.append(FoldShift(seen, calibration=Calibration.fit(probs, labels)))
        else:
            joint = np.zeros((N_CLASSES, N_CLASSES))
            np.add.at(joint, (probs.argmax(axis=1), labels), 1.0 / len(labels))
            shifts.append(FoldShift(seen, confusion=joint))
    return shifts


def region_proportions(
    pixels: np.ndarray,
    counts: np.ndarray,
    folds: np.ndarray,
    shifts: list[FoldShift] | None,
    method: str,
    hard: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 10) proportions of the drawn rows (others 0) and, with ``shifts`` (each fold's
    ``FoldShift``), the region's prior estimated by ``method`` from all its draws, every
    pixel then re-weighted by its fold's ratio (``priors.adapt_region``); else
    (proportions, None)."""
    drawn = np.flatnonzero(counts > 0)
    out = np.zeros((len(counts), N_CLASSES))
    if shifts is None:
        out[drawn] = counted(pixels[drawn], hard)
        return out, None
    groups, members = [], []
    for k in np.unique(folds[drawn]):
        rows = drawn[folds[drawn] == k]
        weights = np.repeat(counts[rows], pixels.shape[1])
        groups.append((pixels[rows], weights, shifts[int(k)]))
        members.append(rows)
    prior, adapted = adapt_region(method, groups)
    for rows, probs in zip(members, adapted, strict=True):
        out[rows] = counted(probs, hard)
    return out, prior


@dataclass
class ClassMixResult:
    regions: list[Region]
    names: list[str]  # members, then "blend"
    kl: np.ndarray  # (rows, regions): each row's count-weighted KL in each region
    clean: np.ndarray  # (rows,): the validation folds as played (nested blend), unweighted
    mix_error: np.ndarray  # (rows, regions): L1 of the region's mean predicted vs true mix
    weights: np.ndarray  # (members,) the blend's weights as tuned on all folds

    def worst_decile(self) -> np.ndarray:
        """(rows,) each row's mean KL over its worst tenth of the regions (at least one)."""
        k = max(1, int(np.ceil(0.1 * self.kl.shape[1])))
        return np.sort(self.kl, axis=1)[:, -k:].mean(axis=1)


def class_mix_test(
    views: list[MemberPixels],
    hard: list[bool],
    labels: np.ndarray,
    folds: np.ndarray,
    ids: np.ndarray,
    plan: FoldPlan,
    mixes: list[Region],
    *,
    prior_adaptation: str | None,
    masks: np.ndarray | None = None,
    blend_settings: dict,
    names: list[str],
    log: Callable[[str], None] = print,
) -> ClassMixResult:
    """Score each member and the blend in every region of ``mixes``; the blend re-tuned
    (``fit_blend`` with ``blend_settings``) on the validation folds played as regions;
    ``prior_adaptation``: a ``priors.METHODS`` run on each region (calibrated EM and BBSE
    learn from ``masks``, the held-out patches' (n, H, W) labels); a member without pixels
    (image-level) or that aligns regions is played without it."""
    method, shifts = prior_adaptation, [None] * len(views)
    if method:
        sources = fold_sources(labels, plan)
        for i, v in enumerate(views):
            pixels = v.pixels()
            if pixels.shape[1] > 1:
                grid = on_grid(np.asarray(masks), v.stride).reshape(len(ids), -1)
                shifts[i] = fold_shifts(method, pixels, grid, folds, sources)

    def played(counts: np.ndarray) -> np.ndarray:
        """(members, n, 10): every member's proportions of a region's draws."""
        return np.stack(
            [
                region_proportions(v.pixels(), counts, folds, f, method, h)[0]
                for v, h, f in zip(views, hard, shifts, strict=True)
            ]
        )

    log("class-mix test: the validation folds, each played as a region")
    oof = np.zeros((len(views), len(ids), N_CLASSES))
    for k in range(plan.n_folds):
        counts = (folds == k).astype(np.int64)
        oof[:, counts > 0] = played(counts)[:, counts > 0]
    fit = fit_blend(oof, labels, folds, **blend_settings)

    def blended(preds: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ids), N_CLASSES))
        for k, (params, prior) in fit.nested_params.items():
            sel = rows[folds[rows] == k]
            if len(sel):
                out[sel, 2:] = blend(Stack.of(preds[:, sel]), params, prior)
        return out

    every = np.arange(len(ids))
    clean = [kl_per_sample(labels, p).mean() for p in oof]
    clean.append(kl_per_sample(labels, blended(oof, every)).mean())
    kl = np.zeros((len(views) + 1, len(mixes)))
    mix_error = np.zeros_like(kl)
    for j, region in enumerate(mixes):
        log(f"class-mix test: region {region.name} ({j + 1}/{len(mixes)})")
        preds = played(region.counts)
        drawn = np.flatnonzero(region.counts > 0)
        rows = [*preds, blended(preds, drawn)]
        w = region.counts[drawn] / region.counts.sum()
        truth = labels[drawn]
        for i, p in enumerate(rows):
            kl[i, j] = w @ kl_per_sample(truth, p[drawn])
            mix_error[i, j] = np.abs(_scored(w @ p[drawn]) - _scored(w @ truth)).sum()
    return ClassMixResult(
        mixes, [*names, "blend"], kl, np.array(clean), mix_error, fit.params.weights
    )


def _scored(mix: np.ndarray) -> np.ndarray:
    scored = np.asarray(mix, np.float64)[2:]
    return scored / scored.sum()
