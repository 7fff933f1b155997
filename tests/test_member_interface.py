"""A new kind of member is one file: a toy kind, defined and registered here and nowhere else,
runs through the fold loop, the blend, the submitted-blend loader and the notebooks' plotting
calls, none of which asks which kind it holds; a toy network kind with its own metric trains
through the unchanged trainer, which selects its weights by that metric."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from landcover import viz
from landcover.artifacts import load_experiment
from landcover.blend_inputs import load_inputs
from landcover.blend_outputs import write_outputs
from landcover.blend_tuning import fit_blend
from landcover.config import load_config
from landcover.constants import N_CLASSES
from landcover.evaluation import Evaluator
from landcover.experiment import run_experiment
from landcover.fold_models import predict_oof_masks
from landcover.fold_plan import plan_for
from landcover.inference import network_inputs
from landcover.members import FitResult, FoldData, FoldModel, Member, member_for, register
from landcover.members.network import NetworkMember
from landcover.metric import kl_divergence
from landcover.submission import load_submitted
from landcover.tables import Proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it


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


class PixelAccuracy(Evaluator):
    """The share of validation pixels whose most likely class is the true one: higher is
    better, and not a KL."""

    metric, lower_is_better = "val_accuracy", False

    def __init__(self, config, images, masks, normalizer, device) -> None:
        self.inputs = network_inputs(np.asarray(images), normalizer, device, config)
        self.masks = torch.from_numpy(np.asarray(masks)).long()

    @torch.no_grad()
    def score(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        predicted = model(self.inputs).argmax(dim=1).cpu()
        return {"val_accuracy": (predicted == self.masks).double().mean().item()}


@register("toy_pixel_net")
class PixelNetMember(NetworkMember):
    """A 1x1 convolution, validated by pixel accuracy."""

    def build(self) -> nn.Module:
        return nn.Conv2d(self.in_channels, N_CLASSES, 1)

    def evaluator(self, fold: FoldData, normalizer, device, bound) -> PixelAccuracy:
        rows = fold.val_rows
        images, masks = fold.train_images[rows], fold.train_masks[rows]
        return PixelAccuracy(self.config, images, masks, normalizer, device)


def test_a_toy_network_kind_with_its_own_metric_trains_through_the_trainer(
    demo_data, tmp_path: Path
):
    model_file = tmp_path / "toy_pixel_net.yaml"
    model_file.write_text(yaml.safe_dump({"model": {"kind": "toy_pixel_net"}}))
    train = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "select": "best", "lr": 0.05}
    settings = {"data": {"n_folds": 2}, "run": {"threads": 1}, "train": train}
    config = load_config(str(model_file), profile="demo", overrides=settings)
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path / "oof", log=lambda _: None)
    member, plan = member_for(config), plan_for(demo_data, config["data"])
    for k in range(2):
        fold_dir = exp_dir / "folds" / f"fold{k}"
        history = pd.read_csv(fold_dir / "history.csv")
        assert history.columns.tolist() == ["epoch", "lr", "train_loss", "val_accuracy", "seconds"]
        best = history.loc[history["val_accuracy"].idxmax()]
        assert json.loads((fold_dir / "done.json").read_text())["best_epoch"] == best["epoch"]
        model = member.load(fold_dir, torch.device("cpu"))  # model.pt: the most accurate epoch's
        rows = plan.val_rows(k)
        evaluator = PixelAccuracy(
            config,
            demo_data.train_images[rows],
            demo_data.train_masks[rows],
            model.normalizer,
            torch.device("cpu"),
        )
        assert evaluator.score(model.model)["val_accuracy"] == best["val_accuracy"]
    assert load_experiment(exp_dir).oof.values.shape == (len(demo_data.train_ids), N_CLASSES)
