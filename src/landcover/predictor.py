"""A trained model, ready to apply to new imagery: one experiment (``oof/<exp>``) or the blend
a submission sidecar describes (``submissions/<name>.json``), with every fold model.

Proportions of a region are computed the way the pipeline computes them for a test patch:
each fold model's proportions are the mean of its per-pixel probabilities (argmax counts for a
``predict.mode: hard`` member; one vector per window for an image-level member), each member's
temperature is applied per fold model, the fold models are averaged, and the members are
weighted and floored toward the training prior (``blending.blend``). The class map is the
argmax of the weighted per-pixel probabilities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .artifacts import is_complete, load_experiment
from .blending import BlendParams, Stack, blend
from .constants import N_CLASSES, PATCH_SIZE
from .errors import ArtifactError
from .members import FoldModel, member_for
from .runtime import resolve_device
from .submission import load_submitted


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

    @property
    def hard(self) -> bool:
        return self.config["predict"]["mode"] == "hard"


class Predictor:
    def __init__(self, members: list[Member], floor: float, prior: np.ndarray, source: Path):
        self.members, self.floor, self.prior, self.source = members, floor, prior, source

    @classmethod
    def load(
        cls, model: str | os.PathLike[str], device: str = "auto", every_member: bool = False
    ) -> Predictor:
        """From a sidecar ``<name>.json`` or a complete experiment directory.
        ``every_member``: members the blend gave no weight are loaded too (to score them
        alone; they change no blended figure)."""
        path, dev = Path(model), resolve_device(device)
        if path.suffix == ".json":
            sub = load_submitted(path)
            entries = [
                (exp, float(w), float(t))
                for exp, w, t in zip(
                    sub.inputs.experiments,
                    sub.params.weights,
                    sub.params.temperatures,
                    strict=True,
                )
                if w > 0 or every_member  # without weight it changes nothing: not loaded
            ]
            floor, prior = sub.params.floor, sub.prior
        elif is_complete(path):
            entries, floor, prior = [(load_experiment(path), 1.0, 1.0)], 0.0, np.zeros(8)
        else:
            raise ArtifactError(
                f"{path}: not a submission sidecar (<name>.json) nor a complete experiment"
            )
        members = []
        for exp, weight, temperature in entries:
            member = member_for(exp.config)
            n_folds = int(exp.oof.folds.max()) + 1
            folds = [member.load(exp.path / "folds" / f"fold{k}", dev) for k in range(n_folds)]
            members.append(
                Member(exp.name, exp.path, exp.config, exp.meta, weight, temperature, folds)
            )
        return cls(members, floor, prior, path)

    @property
    def params(self) -> BlendParams:
        return BlendParams(
            np.array([m.weight for m in self.members]),
            np.array([m.temperature for m in self.members]),
            self.floor,
        )

    @property
    def patch_size(self) -> int:
        """The size of the patches the members trained on: the default window on scenes."""
        return int(max(m.meta.get("patch_size", PATCH_SIZE) for m in self.members))

    @property
    def n_folds(self) -> int:
        return max(len(m.folds) for m in self.members)

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
            [[f.predict_proportions(images, rows) for f in m.folds] for m in self.members]
        )

    @torch.no_grad()
    def pixel_probabilities(self, member: Member, fold: int, images: np.ndarray) -> np.ndarray:
        """Fold model ``fold`` of ``member`` on (n, 4, S, S) windows: (n, 10, S, S) per-pixel
        probabilities (one-hot argmax for a hard member), or (n, 10) for an image-level one."""
        probs = np.asarray(member.folds[fold].predict_probabilities(images), dtype=np.float32)
        if member.hard and probs.ndim == 4:
            probs = np.eye(N_CLASSES, dtype=np.float32)[probs.argmax(axis=1)].transpose(0, 3, 1, 2)
        return probs

    def describe(self) -> str:
        parts = [f"{m.name} (w {m.weight:.3f}, T {m.temperature:.2f})" for m in self.members]
        return f"{self.source}: " + ", ".join(parts) + f"; floor {self.floor:.4f}"
