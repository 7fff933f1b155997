"""The class-mix shift test, run: every member of a blend, and the blend, scored on held-out
patches resampled to other regions' class mixes (``classmix.py``).

Each held-out patch is predicted by the fold model that did not train on it, as the pipeline
predicts a test patch (its dark level first brought within the training patches', per patch).
No step of the pipeline looks at a region as a whole any more: region alignment and class-prior
re-estimation did, were played per region here, and were removed for what this test showed
(docs/decisions.md). A region's score is therefore its patches' KLs weighted by how often each
is drawn.

The blend is tuned as ``blend.py`` tunes it, on the held-out folds, and every fold's rows are
blended by the blend tuned without that fold (nested), so nothing a region is scored on was
tuned on those rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .blend_model import Stack, blend
from .blend_tuning import fit_blend
from .classmix import Region
from .constants import N_CLASSES
from .metric import kl_per_sample


@dataclass
class ClassMixResult:
    regions: list[Region]
    names: list[str]  # members, then "blend"
    kl: np.ndarray  # (rows, regions): each row's count-weighted KL in each region
    clean: np.ndarray  # (rows,): the held-out folds as they are (the blend nested), unweighted
    mix_error: np.ndarray  # (rows, regions): L1 of the region's mean predicted vs true mix
    weights: np.ndarray  # (members,) the blend's weights as tuned on all folds

    def worst_decile(self) -> np.ndarray:
        """(rows,) each row's mean KL over its worst tenth of the regions (at least one)."""
        k = max(1, int(np.ceil(0.1 * self.kl.shape[1])))
        return np.sort(self.kl, axis=1)[:, -k:].mean(axis=1)


def nested_blend(
    oof: np.ndarray, labels: np.ndarray, folds: np.ndarray, settings: dict
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 10) the blend of ``oof`` (members, n, 10), each fold's rows blended by the blend
    tuned without them (``fit_blend`` with ``settings``), and the weights tuned on all rows."""
    fit = fit_blend(oof, labels, folds, **settings)
    out = np.zeros((oof.shape[1], N_CLASSES))
    for k, (params, prior) in fit.nested_params.items():
        rows = folds == k
        out[rows, 2:] = blend(Stack.of(oof[:, rows]), params, prior)
    return out, fit.params.weights


def class_mix_test(
    oof: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    mixes: list[Region],
    *,
    blend_settings: dict,
    names: list[str],
    log: Callable[[str], None] = print,
) -> ClassMixResult:
    """Score each member (``oof``: (members, n, 10), each row by the fold model that did not
    train on it) and their nested blend in every region of ``mixes``."""
    log("class-mix test: the blend tuned without each held-out fold")
    blended, weights = nested_blend(oof, labels, folds, blend_settings)
    rows = [*oof, blended]
    per_row = np.stack([kl_per_sample(labels, p) for p in rows])  # (rows, n)
    kl = np.zeros((len(rows), len(mixes)))
    mix_error = np.zeros_like(kl)
    for j, region in enumerate(mixes):
        w = region.counts / region.counts.sum()
        kl[:, j] = per_row @ w
        truth = _scored(w @ labels)
        mix_error[:, j] = [np.abs(_scored(w @ p) - truth).sum() for p in rows]
    return ClassMixResult(mixes, [*names, "blend"], kl, per_row.mean(axis=1), mix_error, weights)


def _scored(mix: np.ndarray) -> np.ndarray:
    scored = np.asarray(mix, np.float64)[2:]
    return scored / scored.sum()
