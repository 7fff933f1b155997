"""A trained model, ready to apply to new imagery: one experiment (``oof/<exp>``), the blend
a submission sidecar describes (``submissions/<name>.json``) or a bundle of either
(``bundle.py``), with every fold model.

Proportions of a region are computed the way the pipeline computes them for a test patch:
each fold model's proportions are the mean of its per-pixel probabilities (argmax counts for a
``predict.mode: hard`` member; one vector per window for an image-level member), each member's
temperature is applied per fold model, the fold models are averaged, and the members are
weighted and floored toward the training prior (``blend_model.blend``). The class map's
per-pixel probabilities go through the same blend (``map_blend.py``). A
``predict.dark_level`` member sees each patch (each window of a scene) with its dark level
first brought within the fold's training patches' (``radiometry.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .blend_model import BlendParams, Stack, blend, describe_calibration
from .bundle import is_archive, is_bundle, read_bundle, unpacked
from .constants import N_CLASSES, OFFICIAL_ROW_WIDTH, PATCH_SIZE
from .errors import ArtifactError
from .freshness import predicted_otherwise
from .members import FoldModel, SeedAverage, member_for
from .model_source import MemberFiles, ModelSource, source_of
from .radiometry import FoldRadiometry
from .runtime import resolve_device


@dataclass
class Member:
    """One experiment of the model: its fold models and its place in the blend."""

    name: str
    path: Path
    config: dict
    meta: dict
    weight: float
    temperature: float
    folds: list[FoldModel]
    radiometry: list[FoldRadiometry] | None = None  # per fold: how its inputs are prepared

    @property
    def hard(self) -> bool:
        return self.config["predict"]["mode"] == "hard"


def _radiometry(path: Path, n_folds: int, config: dict) -> list[FoldRadiometry] | None:
    """Each fold's ``FoldRadiometry`` from its ``done.json`` under ``predict.dark_level`` (its
    ``dark_bound``); None without it."""
    if not config["predict"]["dark_level"]:
        return None
    out = []
    for k in range(n_folds):
        done = path / "folds" / f"fold{k}" / "done.json"
        record = json.loads(done.read_text()) if done.is_file() else {}
        if record.get(FoldRadiometry.RECORDED) is None:
            raise ArtifactError(
                f"{done}: predict.dark_level is on but the fold recorded no "
                f"{FoldRadiometry.RECORDED}; re-run train.py on this experiment to re-predict it"
            )
        out.append(FoldRadiometry.recorded(record))
    return out


def _load_member(files: MemberFiles, device: torch.device) -> Member:
    """A member's fold models, refused if its folds were predicted under other settings than
    its config's. Built without pretrained encoder weights: each fold's saved weights replace
    every one of them, and a machine that predicts need not fetch what training started from."""
    stale = predicted_otherwise(files.path, files.config)
    if stale:
        raise ArtifactError(
            f"{files.path}: folds {stale} were predicted under other predict settings "
            "than its config.yaml's; re-run train.py on this experiment to re-predict "
            "it (nothing is retrained)"
        )
    model = files.config["model"]
    kind = member_for(
        {**files.config, "model": {**model, "pretrained": False}}
        if "pretrained" in model
        else files.config
    )
    runs = files.seeds or (files.path,)  # a member averaged over seeds: each run's fold models

    def fold(k: int) -> FoldModel:
        models = [kind.load(run / "folds" / f"fold{k}", device) for run in runs]
        return models[0] if len(models) == 1 else SeedAverage(models)

    folds = [fold(k) for k in range(files.n_folds)]
    radiometry = _radiometry(files.path, files.n_folds, files.config)
    return Member(
        files.name,
        files.path,
        files.config,
        files.meta,
        files.weight,
        files.temperature,
        folds,
        radiometry,
    )


class Predictor:
    def __init__(
        self,
        members: list[Member],
        floor: float,
        prior: np.ndarray,
        source: Path,
        calibration: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    ):
        self.members, self.floor, self.prior, self.source = members, floor, prior, source
        self.bias, self.power = calibration  # the blend's class calibration (blend_model.py)

    @classmethod
    def load(
        cls, model: str | os.PathLike[str], device: str = "auto", every_member: bool = False
    ) -> Predictor:
        """From a sidecar ``<name>.json``, a complete experiment directory, or a bundle
        (``bundle.py``: a folder, or a .tar unpacked to a temporary directory for as long as
        loading takes). ``every_member``: members the blend gave no weight are loaded too (to
        score them alone; they change no blended figure)."""
        path, dev = Path(model), resolve_device(device)
        if is_archive(path):
            with unpacked(path) as folder:
                return cls.of(read_bundle(folder, shown=str(path)), dev, path)
        if is_bundle(path):
            return cls.of(read_bundle(path), dev, path)
        return cls.of(source_of(path, every_member), dev, path)

    @classmethod
    def of(cls, source: ModelSource, device: torch.device, shown: Path) -> Predictor:
        """Every fold model of ``source``'s members, on ``device``."""
        members = [_load_member(m, device) for m in source.members]
        return cls(members, source.floor, source.prior, shown, source.calibration)

    def with_fold(self, fold: int) -> Predictor:
        """This blend with fold model ``fold`` of each member only: what predicts the
        training tiles of that fold held out (the other fold models trained on them)."""
        members = [
            dataclasses.replace(
                m,
                folds=[m.folds[fold % len(m.folds)]],
                radiometry=None if m.radiometry is None else [m.radiometry[fold % len(m.folds)]],
            )
            for m in self.members
        ]
        return Predictor(members, self.floor, self.prior, self.source, (self.bias, self.power))

    @property
    def params(self) -> BlendParams:
        return BlendParams(
            np.array([m.weight for m in self.members]),
            np.array([m.temperature for m in self.members]),
            self.floor,
            self.bias,
            self.power,
        )

    @property
    def patch_size(self) -> int:
        """The size of the patches the members trained on: the default window on scenes."""
        return int(max(m.meta.get("patch_size", PATCH_SIZE) for m in self.members))

    @property
    def n_folds(self) -> int:
        return max(len(m.folds) for m in self.members)

    @property
    def row_width(self) -> int:
        """Tiles a raster row of sample ids (the members' fold scheme's)."""
        scheme = self.members[0].meta.get("fold_scheme") or {}
        return int(scheme.get("row_width") or OFFICIAL_ROW_WIDTH)

    def inputs(
        self, member: Member, fold: int, images: np.ndarray, valid: np.ndarray | None = None
    ) -> np.ndarray:
        """``images`` as fold model ``fold`` of ``member`` takes them: each one's dark level (of
        its ``valid`` pixels if given) brought within its training patches' under
        ``predict.dark_level``, else as they are."""
        if member.radiometry is None:
            return images
        return member.radiometry[fold].prepared(images, valid=valid)

    def combine(self, proportions: list[list[np.ndarray]]) -> np.ndarray:
        """(n, 10) blended proportions from ``proportions[member][fold]`` (n, 10) arrays:
        temperature per fold model, fold mean, weights and floor (no_data, clouds: 0)."""
        out = np.zeros((len(proportions[0][0]), N_CLASSES))
        for k in range(self.n_folds):
            stack = Stack.of(np.stack([p[k % len(p)] for p in proportions]))
            out[:, 2:] += blend(stack, self.params, self.prior) / self.n_folds
        return out

    def patch_proportions(self, images: np.ndarray) -> np.ndarray:
        """(n, 10) proportions of whole (n, 4, H, W) patches, as the pipeline predicts test
        patches (each member's own ``predict`` settings)."""
        rows = np.arange(len(images))
        return self.combine(
            [
                [
                    f.predict_proportions(self.inputs(m, k, images), rows)
                    for k, f in enumerate(m.folds)
                ]
                for m in self.members
            ]
        )

    @torch.no_grad()
    def pixel_probabilities(
        self, member: Member, fold: int, images: np.ndarray, valid: np.ndarray | None = None
    ) -> np.ndarray:
        """Fold model ``fold`` of ``member`` on (n, 4, S, S) windows (``valid`` (n, S, S): their
        pixels that are ground, not nodata): (n, 10, S, S) per-pixel probabilities (one-hot
        argmax for a hard member), or (n, 10) for an image-level one."""
        inputs = self.inputs(member, fold, images, valid=valid)
        probs = np.asarray(member.folds[fold].predict_probabilities(inputs), dtype=np.float32)
        if member.hard and probs.ndim == 4:
            probs = np.eye(N_CLASSES, dtype=np.float32)[probs.argmax(axis=1)].transpose(0, 3, 1, 2)
        return probs

    def describe(self) -> str:
        parts = [f"{m.name} (w {m.weight:.3f}, T {m.temperature:.2f})" for m in self.members]
        calibration = describe_calibration(self.params)
        return (
            f"{self.source}: "
            + ", ".join(parts)
            + f"; floor {self.floor:.4f}"
            + (f"; {calibration}" if calibration else "")
        )
