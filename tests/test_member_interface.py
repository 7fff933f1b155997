"""A new kind of member is one file: a toy kind, defined and registered here and nowhere else,
runs through the fold loop, the blend, the submitted-blend loader and the notebooks' plotting
calls, none of which asks which kind it holds."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import yaml

from landcover import viz
from landcover.artifacts import load_experiment
from landcover.blend_io import load_inputs, write_outputs
from landcover.blending import fit_blend
from landcover.config import load_config
from landcover.experiment import run_experiment
from landcover.fold_models import predict_oof_masks
from landcover.members import FitResult, FoldData, FoldModel, Member, register
from landcover.metric import kl_divergence
from landcover.submission import load_submitted
from landcover.tables import Proportions


class PriorFoldModel(FoldModel):
    """Predicts the training prior for every patch; its mask is the prior's top class."""

    def __init__(self, prior: np.ndarray):
        self.prior = prior

    def predict_proportions(self, images, rows, *, desc=None):
        return np.tile(self.prior, (len(rows), 1))

    def predict_masks(self, images):
        return np.full((len(images), *images.shape[-2:]), self.prior.argmax(), dtype=np.uint8)


@register("toy_prior")
class PriorMember(Member):
    kept_files = ("prior.npy",)

    def fit_fold(self, fold: FoldData, work: Path, device, seed: int) -> FitResult:
        prior = fold.labels[fold.train_rows].mean(axis=0)
        np.save(work / "prior.npy", prior)
        val_kl = kl_divergence(fold.labels[fold.val_rows], np.tile(prior, (len(fold.val_rows), 1)))
        row = {"epoch": 1, "lr": 0.0, "train_loss": 0.0, "val_kl": val_kl}
        return FitResult([{**row, "val_kl_soft": val_kl, "seconds": 0.0}])

    def load(self, fold_dir: Path, device) -> PriorFoldModel:
        return PriorFoldModel(np.load(Path(fold_dir) / "prior.npy"))


def test_a_toy_kind_runs_through_every_stage(demo_data, tmp_path: Path):
    model_file = tmp_path / "toy_prior.yaml"
    model_file.write_text(yaml.safe_dump({"model": {"kind": "toy_prior"}}))
    settings = {"data": {"n_folds": 3}, "run": {"threads": 1}}
    config = load_config(str(model_file), profile="demo", overrides=settings)
    oof_dir = tmp_path / "oof"
    exp_dir = run_experiment(config, demo_data, oof_dir=oof_dir, log=lambda _: None)
    exp = load_experiment(exp_dir)
    assert (exp_dir / "folds" / "fold0" / "prior.npy").is_file()
    rows = exp.oof.folds == 0  # fold 0's prediction is the prior of fold 0's training rows
    assert np.allclose(exp.oof.values[rows], exp.oof.values[rows][0])
    # a second member to blend with: the same kind under another name
    other = load_config(str(model_file), profile="demo", overrides={**settings, "seed": 1})
    other["experiment"] = "toy_prior_2"
    run_experiment(other, demo_data, oof_dir=oof_dir, log=lambda _: None)

    inputs = load_inputs(oof_dir)
    fit = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=5, seed=0)
    out = write_outputs(tmp_path / "subs" / "toy.csv", inputs, fit, {"trials": 5})
    submitted = load_submitted(out.with_suffix(".json"))
    assert submitted.inputs.names == ["toy_prior", "toy_prior_2"]
    assert json.loads(out.with_suffix(".json").read_text())["n_test"] == len(demo_data.test_ids)

    # the training notebook's figures, through the same calls
    truth = Proportions(demo_data.train_ids, demo_data.labels)
    figures = [
        viz.plot_learning_curves(exp_dir),
        viz.plot_fold_scores(exp, truth),
        viz.plot_class_scores(exp, truth),
        viz.plot_pred_vs_true(exp.oof, truth),
    ]
    images = np.asarray(demo_data.train_images[:3])
    masks = predict_oof_masks(exp_dir, images, exp.oof.select(demo_data.train_ids[:3]).folds)
    assert masks.shape == (3, *images.shape[-2:])
    figures.append(viz.plot_patches(images, np.asarray(demo_data.train_masks[:3]), masks))
    figures.append(viz.plot_proportions(demo_data.labels[:3], exp.oof.values[:3]))
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figures)
