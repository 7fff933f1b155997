"""The fold loop end to end on generated data: artifacts, scoring, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_cli

from landcover.artifacts import is_complete, load_experiment
from landcover.config import load_config
from landcover.errors import ConfigError
from landcover.experiment import run_experiment
from landcover.tables import read_proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

SMOKE = {
    "train": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8},
    "predict": {"tta": 2},
    "data": {"n_folds": 3},
    "run": {"threads": 1},
}


def test_fold_loop_writes_valid_artifacts(demo_data, demo_dir: Path, tmp_path: Path):
    config = load_config("unet_regnety_002", profile="demo", overrides=SMOKE)
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    assert exp_dir == tmp_path / "unet_regnety_002" and is_complete(exp_dir)
    exp = load_experiment(exp_dir)
    assert sorted(exp.oof.ids.tolist()) == sorted(demo_data.train_ids.tolist())
    assert set(exp.oof.folds.tolist()) == {0, 1, 2}
    assert sorted(exp.test.ids.tolist()) == sorted(demo_data.test_ids.tolist())
    for k in range(3):
        assert (exp_dir / "folds" / f"fold{k}" / "history.csv").is_file()
        for name in ("model.pt", "normalizer.json", "done.json"):
            assert (exp_dir / "folds" / f"fold{k}" / name).is_file(), name
    # each fold model's own test predictions, and test.csv is their mean
    assert len(exp.test_folds) == 3
    mean = np.mean([t.select(exp.test.ids).values for t in exp.test_folds], axis=0)
    assert np.allclose(mean, exp.test.values, atol=1e-15)
    assert not (tmp_path / ".work" / "unet_regnety_002").exists()
    for name in ("oof.csv", "test.csv"):
        read_proportions(exp_dir / name, require_sum_to_one=True)
    result = run_cli("src/score.py", str(demo_dir / "train_labels.csv"), str(exp_dir / "oof.csv"))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.splitlines()[-1]) == np.float64(exp.scores["oof_kl"]).round(10)
    # a second run skips the complete experiment
    messages = []
    assert run_experiment(config, demo_data, oof_dir=tmp_path, log=messages.append) == exp_dir
    assert "already complete" in messages[0]


def test_benchmark_and_classifier_run(demo_data, tmp_path: Path):
    for name in ("benchmark_unet", "classifier_resnet18"):
        config = load_config(
            name, profile="demo", overrides={**SMOKE, "train": {"epochs": 1, "steps_per_epoch": 1}}
        )
        exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
        assert is_complete(exp_dir)
    hard = load_experiment(tmp_path / "benchmark_unet").oof.values
    pixels = 32 * 32  # hard argmax counts are multiples of 1/(pixels * tta views)
    assert np.allclose(hard * pixels * 2, np.round(hard * pixels * 2))


def test_partial_folds_then_rest(demo_data, tmp_path: Path):
    config = load_config("unet_regnety_002", profile="demo", overrides=SMOKE)
    assert (
        run_experiment(config, demo_data, oof_dir=tmp_path, folds_to_run=[0], log=lambda _: None)
        is None
    )
    assert (tmp_path / ".work" / "unet_regnety_002" / "fold0" / "done.json").is_file()
    assert is_complete(run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None))


def _train_cmd(demo_dir: Path, oof: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "src/train.py",
        "--experiments",
        "unet_regnety_002",
        "--data",
        str(demo_dir),
        "--profile",
        "demo",
        "--artifacts",
        str(oof),
        "--cache-dir",
        str(cache),
        "--set",
        "train.epochs=3",
        "train.batch_size=8",
        "data.n_folds=2",
        "data.group_size=2",
        "predict.tta=1",
        "run.threads=1",
        "--folds",
        "0",
    ]


def test_sigkill_mid_training_resumes_to_identical_result(demo_dir: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cache = tmp_path / "cache"
    reference = subprocess.run(
        _train_cmd(demo_dir, tmp_path / "ref", cache),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reference.returncode == 0, reference.stderr

    work = tmp_path / "killed" / "oof" / ".work" / "unet_regnety_002" / "fold0"
    proc = subprocess.Popen(
        _train_cmd(demo_dir, tmp_path / "killed", cache),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (work / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # during epoch 2 (epoch 1's checkpoint just landed)
    proc.wait()
    assert not (work / "done.json").exists(), "training finished before it could be killed"
    epochs_before = len(pd.read_csv(work / "history.csv")) if (work / "history.csv").exists() else 0
    assert epochs_before < 3
    resumed = subprocess.run(
        _train_cmd(demo_dir, tmp_path / "killed", cache),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    ref_work = tmp_path / "ref" / "oof" / ".work" / "unet_regnety_002" / "fold0"
    assert np.array_equal(np.load(work / "val.npy"), np.load(ref_work / "val.npy"))
    assert (
        pd.read_csv(work / "history.csv")["val_kl"].tolist()
        == pd.read_csv(ref_work / "history.csv")["val_kl"].tolist()
    )


def test_same_data_config_and_seed_reproduce_folds_and_oof(
    demo_data, demo_dir: Path, tmp_path: Path
):
    from landcover.cache import prepare_data

    config = load_config("unet_regnety_002", profile="demo", overrides=SMOKE)
    first = run_experiment(config, demo_data, oof_dir=tmp_path / "a", log=lambda _: None)
    fresh = prepare_data(demo_dir, cache_dir=tmp_path / "cache", workers=2)  # new fold file too
    second = run_experiment(config, fresh, oof_dir=tmp_path / "b", log=lambda _: None)
    folds_name = "folds-bands-w6-n3-b1-k3-s0.csv"
    assert (demo_data.cache_dir / folds_name).read_bytes() == (
        tmp_path / "cache" / folds_name
    ).read_bytes()
    for name in ("oof.csv", "test.csv", "scores.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    meta = load_experiment(first).meta
    for key in (
        "data_fingerprint",
        "config_hash",
        "seed",
        "code_version",
        "packages",
        "folds_fingerprint",
        "fold_plan",
        "fold_scheme",
    ):
        assert meta[key] not in (None, "", {}), key


def test_pixel_gbm_member(demo_data, tmp_path: Path):
    from landcover.fold_models import predict_oof_masks

    config = load_config(
        "pixel_lightgbm", profile="demo", overrides={**SMOKE, "gbm": {"n_estimators": 20}}
    )
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    exp = load_experiment(exp_dir)
    assert np.allclose(exp.oof.values.sum(axis=1), 1) and np.allclose(
        exp.test.values.sum(axis=1), 1
    )
    assert exp.scores["oof_kl"] < 1.0  # it learns something in 20 rounds
    masks = predict_oof_masks(exp_dir, demo_data.train_images[:4], exp.oof.folds[:4])
    assert masks.shape == (4, 32, 32) and masks.max() <= 9
    hard = load_config(
        "pixel_lightgbm",
        profile="demo",
        overrides={**SMOKE, "gbm": {"n_estimators": 20}, "predict": {"mode": "hard"}},
    )
    assert run_experiment(hard, demo_data, oof_dir=tmp_path, log=lambda _: None) == exp_dir
    counts = load_experiment(exp_dir).oof.values  # argmax counts on a grid of every 4th pixel
    grid = (32 // config["gbm"]["predict_stride"]) ** 2
    assert np.allclose(counts * grid, np.round(counts * grid)) and np.allclose(counts.sum(1), 1)
    assert not np.allclose(counts, exp.oof.values)


def test_pixel_gbm_bags_average_the_models_of_consecutive_seeds(demo_data, tmp_path: Path):
    """``gbm.bags: 2`` at seed 0 fits, in each fold, the model a run at seed 0 fits and the one
    a run at seed 1 fits, and predicts the mean of their probabilities: its OOF and test
    proportions are the mean of those two runs'; every bag's model is kept and loaded back."""
    from landcover.fold_models import predict_oof_masks

    def run(seed: int, bags: int):
        gbm = {"n_estimators": 8, "bags": bags}
        overrides = {**SMOKE, "seed": seed, "gbm": gbm}
        config = load_config("pixel_lightgbm", profile="demo", overrides=overrides)
        exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path / f"s{seed}b{bags}", log=print)
        return exp_dir, load_experiment(exp_dir)

    _, first = run(0, 1)
    _, second = run(1, 1)
    bagged_dir, bagged = run(0, 2)
    assert not np.allclose(first.oof.values, second.oof.values)  # the seeds differ
    for part in ("oof", "test"):
        mean = (getattr(first, part).values + getattr(second, part).values) / 2
        assert np.allclose(getattr(bagged, part).values, mean, atol=1e-12), part
    for k in range(3):
        kept = sorted(p.name for p in (bagged_dir / "folds" / f"fold{k}").iterdir())
        assert {"model.txt", "classes.npy", "model-bag1.txt", "classes-bag1.npy"} <= set(kept)
    masks = predict_oof_masks(bagged_dir, demo_data.train_images[:2], bagged.oof.folds[:2])
    assert masks.shape == (2, 32, 32)
    with pytest.raises(ConfigError, match=r"'gbm\.bags' must be a whole number of at least 1"):
        load_config("pixel_lightgbm", profile="demo", overrides=["gbm.bags=0"])


def test_pixel_gbm_caps_a_folds_training_pixels(demo_data, tmp_path: Path, monkeypatch):
    """``gbm.max_train_pixels`` bounds the pixels a fold fits on (the first draws of every
    training patch); under the cap each patch gives all its ``pixels_per_image``."""
    from landcover.fold_plan import plan_for
    from landcover.members import gbm_fit

    assert gbm_fit.patch_share(100, 64, 0) == 64
    assert gbm_fit.patch_share(100, 64, 6400) == 64
    assert gbm_fit.patch_share(100, 64, 1000) == 10
    assert gbm_fit.patch_share(100, 64, 50) == 1
    fitted = []
    real = gbm_fit.lgb.Dataset

    def spy(data, label=None, **kwargs):
        if "reference" not in kwargs:  # the training set, not the validation curve's
            fitted.append(len(data))
        return real(data, label, **kwargs)

    monkeypatch.setattr(gbm_fit.lgb, "Dataset", spy)
    for cap in (0, 200):
        gbm = {"n_estimators": 3, "pixels_per_image": 64, "max_train_pixels": cap}
        config = load_config("pixel_lightgbm", profile="demo", overrides={**SMOKE, "gbm": gbm})
        run_experiment(config, demo_data, oof_dir=tmp_path / str(cap), log=lambda _: None)
    plan = plan_for(demo_data, config["data"])
    n_train = [len(plan.train_rows(k)) for k in range(3)]
    assert all(n * 64 > 200 for n in n_train)  # the cap binds on every fold
    assert fitted == [n * 64 for n in n_train] + [n * max(1, 200 // n) for n in n_train]


def test_pixel_gbm_fits_with_the_configs_regularisation(demo_data, tmp_path: Path):
    """``gbm.lambda_l2``, ``gbm.min_data_in_leaf``, ``gbm.feature_fraction`` and
    ``gbm.num_leaves`` reach LightGBM: each fold's saved model records them."""
    gbm = {
        "n_estimators": 3,
        "lambda_l2": 7.5,
        "min_data_in_leaf": 13,
        "feature_fraction": 0.6,
        "num_leaves": 9,
    }
    config = load_config("pixel_lightgbm", profile="demo", overrides={**SMOKE, "gbm": gbm})
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    for model in sorted((exp_dir / "folds").glob("fold*/model.txt")):
        text = model.read_text()
        wanted = ("[lambda_l2: 7.5]", "[min_data_in_leaf: 13]", "[feature_fraction: 0.6]")
        for line in (*wanted, "[num_leaves: 9]"):
            assert line in text, (model, line)
    assert len(list((exp_dir / "folds").glob("fold*/model.txt"))) == 3


def test_each_fold_trains_on_its_plan_rows_only(demo_data, tmp_path: Path, monkeypatch):
    """The fold loop trains fold k on the plan's training rows: its validation band and the
    buffer rows around it never reach the model or the normaliser."""
    from landcover.fold_plan import plan_for
    from landcover.members import network

    seen = {}
    real_fit, real_normalizer = network.fit, network.fit_normalizer

    def spy(config, model, images, masks, train_rows, *args, **kwargs):
        seen[kwargs["desc"]] = (np.asarray(train_rows), np.asarray(kwargs["evaluator"].rows))
        return real_fit(config, model, images, masks, train_rows, *args, **kwargs)

    def spy_normalizer(images, rows, **kwargs):
        seen.setdefault("normalizer", []).append(np.asarray(rows))
        return real_normalizer(images, rows, **kwargs)

    monkeypatch.setattr(network, "fit", spy)
    monkeypatch.setattr(network, "fit_normalizer", spy_normalizer)
    config = load_config("unet_regnety_002", profile="demo", overrides=SMOKE)
    run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    plan = plan_for(demo_data, config["data"])
    assert any(len(plan.buffer_rows(k)) for k in range(3))
    for k in range(3):
        train_rows, val_rows = seen[f"fold {k}"]
        assert np.array_equal(train_rows, plan.train_rows(k))
        assert np.array_equal(val_rows, plan.val_rows(k))
        assert not set(train_rows) & set(plan.buffer_rows(k))
        assert np.array_equal(seen["normalizer"][k], plan.train_rows(k))


def test_select_best_and_last_predict_with_different_weights(demo_data, tmp_path: Path):
    """train.select last predicts with the final weights, best with the best-validation epoch's;
    early stopping is refused without select best (it would peek at the validation fold)."""
    import pytest
    import torch

    from landcover.errors import ConfigError

    overrides = {**SMOKE, "train": {**SMOKE["train"], "epochs": 3}}
    runs = {}
    for select in ("last", "best"):
        config = load_config(
            "unet_regnety_002",
            profile="demo",
            overrides={**overrides, "train": {**overrides["train"], "select": select}},
        )
        runs[select] = run_experiment(config, demo_data, oof_dir=tmp_path / select, log=print)
    last, best = runs["last"] / "folds", runs["best"] / "folds"
    for k in range(3):
        final = torch.load(last / f"fold{k}" / "model.pt", weights_only=True)
        chosen = torch.load(best / f"fold{k}" / "model.pt", weights_only=True)
        history = pd.read_csv(runs["last"] / "folds" / f"fold{k}" / "history.csv")
        same = all(torch.equal(final[n], chosen[n]) for n in final)
        assert same == (history["val_kl"].idxmin() == len(history) - 1)
    with pytest.raises(ConfigError, match=r"needs train\.select: best"):
        load_config("unet_regnety_002", overrides=["train.early_stopping=3"])


def test_the_trainer_selects_stops_and_resumes_by_the_evaluators_metric(demo_data, tmp_path):
    """``fit`` knows no metric: a scripted evaluator where higher is better picks ``best.pt``
    (its best epoch's weights), stops early after ``train.early_stopping`` epochs without a
    better score, and a resumed run stops where it did; the callbacks' files are kept beside
    the weights and their hook hears every epoch."""
    import torch

    from landcover.evaluation import EpochHook, Evaluator, SaveJson
    from landcover.pixels import Normalizer
    from landcover.trainer import fit

    class Scripted(Evaluator):
        metric, lower_is_better = "val_score", False

        def __init__(self, scores: list[float]) -> None:
            self.scores, self.weights = scores, []

        def score(self, model: torch.nn.Module) -> dict[str, float]:
            self.weights.append({k: v.clone() for k, v in model.state_dict().items()})
            return {"val_score": self.scores[len(self.weights) - 1], "val_other": 0.0}

    train = {"epochs": 6, "steps_per_epoch": 1, "batch_size": 4, "select": "best"}
    config = load_config(
        "unet_regnety_002", profile="demo", overrides={"train": {**train, "early_stopping": 2}}
    )
    evaluator, heard = Scripted([0.1, 0.7, 0.3, 0.2, 0.9, 1.0]), []
    torch.manual_seed(0)
    model = torch.nn.Conv2d(4, 10, 1)

    def run(evaluator: Evaluator) -> list[dict]:
        return fit(
            config,
            model,
            demo_data.train_images,
            demo_data.train_masks,
            np.arange(12),
            Normalizer(mean=[0.0] * 4, std=[1000.0] * 4, log=False),
            tmp_path,
            torch.device("cpu"),
            evaluator=evaluator,
            loss_weights=torch.ones(10),
            callbacks=[SaveJson("kept.json", {"mode": "test"}), EpochHook(heard.append)],
            seed=0,
        )

    history = run(evaluator)
    assert [row["val_score"] for row in history] == [0.1, 0.7, 0.3, 0.2]  # 2 epochs after 0.7
    columns = ["epoch", "lr", "train_loss", "val_score", "val_other", "seconds"]
    assert heard == history and list(history[0]) == columns
    assert evaluator.best_row(history)["epoch"] == 2
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    assert all(torch.equal(best[k], evaluator.weights[1][k]) for k in best)
    assert all(torch.equal(final[k], evaluator.weights[3][k]) for k in final)
    assert json.loads((tmp_path / "kept.json").read_text()) == {"mode": "test"}
    assert pd.read_csv(tmp_path / "history.csv").columns.tolist() == columns
    again = Scripted([])
    assert run(again) == history and again.weights == []  # resumed: stopped, nothing scored


def test_new_predict_settings_repredict_without_training(demo_data, tmp_path: Path, monkeypatch):
    """Changing only how a finished experiment predicts (TTA views) re-predicts OOF and test
    from its fold models: nothing is trained, the OOF changes, the experiment is rewritten."""
    from landcover.freshness import experiment_state
    from landcover.members import network

    config = load_config(
        "unet_regnety_002", profile="demo", overrides={**SMOKE, "predict": {"tta": 1}}
    )
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    before = load_experiment(exp_dir)
    weights = (exp_dir / "folds" / "fold0" / "model.pt").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(network, "fit", no_training)
    more_views = load_config(
        "unet_regnety_002", profile="demo", overrides={**SMOKE, "predict": {"tta": 4}}
    )
    assert experiment_state(tmp_path, more_views, demo_data) == "repredict"
    messages = []
    assert run_experiment(more_views, demo_data, oof_dir=tmp_path, log=messages.append) == exp_dir
    assert "re-predicting" in messages[0]
    after = load_experiment(exp_dir)
    assert after.config["predict"]["tta"] == 4
    assert not np.allclose(after.oof.values, before.oof.values)
    assert (exp_dir / "folds" / "fold0" / "model.pt").read_bytes() == weights
    assert experiment_state(tmp_path, more_views, demo_data) == "complete"

    # another recipe under the same name is refused, not silently replacing this one
    longer = load_config(
        "unet_regnety_002",
        profile="demo",
        overrides={**SMOKE, "train": {**SMOKE["train"], "epochs": 3}},
    )
    with pytest.raises(ConfigError, match=r"trained otherwise \(train\.epochs\); --force"):
        run_experiment(longer, demo_data, oof_dir=tmp_path, log=lambda _: None)
    assert load_experiment(exp_dir).config["train"]["epochs"] == after.config["train"]["epochs"]
    meta = json.loads((exp_dir / "meta.json").read_text())
    (exp_dir / "meta.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(ConfigError, match="artifact format 1; this code writes 2"):
        run_experiment(more_views, demo_data, oof_dir=tmp_path, log=lambda _: None)
    assert after.scores["oof_kl"] != before.scores["oof_kl"]


def test_ema_is_warmed_up_not_anchored_to_the_initial_weights():
    """The average's first update copies the weights, and its decay grows with the steps: after
    30 steps of weights that moved from 0 to 1 it holds ~1, where a plain 0.999 average would
    still hold 0.97 of the initial 0 (the defect a 240-step GPU fold showed)."""
    import torch

    from landcover.trainer import build_ema

    net = torch.nn.Linear(3, 2)
    torch.nn.init.zeros_(net.weight)
    ema = build_ema(net, 0.999)
    with torch.no_grad():
        net.weight.fill_(1.0)
    for step in range(1, 31):
        ema.update(net, step=step)
    assert torch.allclose(ema.module.weight, torch.ones(2, 3))
    assert ema.get_decay(30) < 0.9 < ema.get_decay(10_000) <= 0.999


def test_ema_weights_validate_save_and_resume(demo_data, tmp_path: Path):
    """train.ema: the moving average is what validates and is kept (final.pt); the raw
    weights train on; both are in last.pt, so a resumed run continues the average."""
    import torch

    config = load_config(
        "unet_regnety_002",
        profile="demo",
        overrides={**SMOKE, "train": {**SMOKE["train"], "ema": 0.5}},
    )
    config["data"]["n_folds"] = 3
    run_experiment(config, demo_data, oof_dir=tmp_path, folds_to_run=[0], log=lambda _: None)
    fold = tmp_path / ".work" / "unet_regnety_002" / "fold0"
    state = torch.load(fold / "last.pt", weights_only=False)
    final = torch.load(fold / "final.pt", weights_only=True)
    assert all(torch.equal(final[k], state["ema"][k]) for k in final)
    assert any(not torch.equal(final[k], state["model"][k]) for k in final)


def test_dark_corrected_training_corrects_onto_the_bound_the_fold_predicts_with(
    demo_data, tmp_path: Path, monkeypatch
):
    """train.dark_corrected: a fold's training batches are corrected onto the dark bound its
    ``done.json`` records and its predictions use, and its per-epoch validation reads the
    validation patches as prediction corrects them (``radiometry.dark_corrected``)."""
    import json

    from landcover import trainer
    from landcover.fold_plan import plan_for
    from landcover.members import kl_evaluator
    from landcover.radiometry import dark_bound, dark_corrected, dark_levels

    seen = {}
    real_batches, real_predict = trainer.training_batches, kl_evaluator.predict_modes

    def batches(*args, **kwargs):
        seen["bound"] = kwargs["bound"]
        return real_batches(*args, **kwargs)

    def predict(model, images, rows, *args, **kwargs):
        seen["val_images"] = np.asarray(images)[rows]
        return real_predict(model, images, rows, *args, **kwargs)

    monkeypatch.setattr(trainer, "training_batches", batches)
    monkeypatch.setattr(kl_evaluator, "predict_modes", predict)
    on = {"train": {**SMOKE["train"], "dark_corrected": True}, "predict": {"dark_level": True}}
    config = load_config("unet_regnety_002", profile="demo", overrides={**SMOKE, **on})
    run_experiment(config, demo_data, oof_dir=tmp_path, folds_to_run=[0], log=lambda _: None)
    done = json.loads((tmp_path / ".work" / "unet_regnety_002" / "fold0" / "done.json").read_text())
    plan = plan_for(demo_data, config["data"])
    images, rows = demo_data.train_images, plan.train_rows(0)
    np.testing.assert_array_equal(seen["bound"], done["dark_bound"])
    np.testing.assert_array_equal(seen["bound"], dark_bound(images, rows))
    val = images[plan.val_rows(0)]
    np.testing.assert_array_equal(seen["val_images"], dark_corrected(val, seen["bound"]))
    assert (dark_levels(val) > seen["bound"]).any()  # some validation patch was lowered


def test_logit_adjustment_takes_the_class_weighting_back_out(
    demo_data, tmp_path: Path, monkeypatch
):
    """A network trained with class weights keeps them beside its weights;
    ``predict.logit_adjustment`` re-predicts (nothing retrained) with every logit less alpha x
    log(its class weight), classes of weight 0 untouched, and is refused without a weighting,
    out of [0, 1], or without the weights file."""
    import torch

    from landcover.fold_plan import plan_for
    from landcover.losses import class_weights
    from landcover.members import member_for, network

    def config(alpha: float, mode: str = "sqrt_inverse_frequency") -> dict:
        overrides = {**SMOKE, "loss": {"class_weights": mode}, "predict": {"tta": 1}}
        overrides["predict"]["logit_adjustment"] = alpha
        return load_config("unet_regnety_002", profile="demo", overrides=overrides)

    plain = config(0.0)
    exp_dir = run_experiment(plain, demo_data, oof_dir=tmp_path, log=lambda _: None)
    before = load_experiment(exp_dir)
    fold0 = exp_dir / "folds" / "fold0"
    saved = json.loads((fold0 / "class_weights.json").read_text())
    rows = plan_for(demo_data, plain["data"]).train_rows(0)
    assert saved["mode"] == "sqrt_inverse_frequency"
    np.testing.assert_allclose(
        saved["weights"], class_weights(demo_data.train_masks, saved["mode"], rows=rows).numpy()
    )

    x = torch.randn(2, 4, 32, 32)
    raw = member_for(plain).load(fold0, torch.device("cpu")).model
    adjusted = member_for(config(0.5)).load(fold0, torch.device("cpu")).model
    w = torch.tensor(saved["weights"])
    shift = torch.where(w > 0, 0.5 * w.clamp_min(1e-12).log(), torch.zeros_like(w))
    with torch.no_grad():
        torch.testing.assert_close(adjusted(x), raw(x) - shift.view(1, -1, 1, 1))
    assert shift[:2].eq(0).all() and shift[2:].ne(0).any()

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(network, "fit", no_training)
    messages = []
    run_experiment(config(0.5), demo_data, oof_dir=tmp_path, log=messages.append)
    assert "re-predicting" in messages[0]
    after = load_experiment(exp_dir)
    assert not np.allclose(after.oof.values, before.oof.values)

    with pytest.raises(ConfigError, match=r"needs loss\.class_weights"):
        config(0.5, mode="none")
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\], got 1\.5"):
        config(1.5)
    (fold0 / "class_weights.json").unlink()
    with pytest.raises(ConfigError, match=r"class_weights\.json: missing"):
        member_for(config(0.5)).load(fold0, torch.device("cpu"))


def test_the_learning_rate_warms_up_then_follows_a_cosine():
    """``train.warmup_epochs``: the rate rises linearly over that many epochs, then decays on a
    cosine to 0 at the last step; ``train.scheduler: none`` keeps it constant."""
    from landcover.trainer import _schedule

    config = load_config("unet_regnety_002", overrides=["train.warmup_epochs=2"])
    factor = _schedule(config, total_steps=100, steps_per_epoch=10)
    assert [factor(s) for s in (0, 9, 19)] == pytest.approx([0.05, 0.5, 1.0])
    assert factor(20) == pytest.approx(1.0) and factor(60) == pytest.approx(0.5)
    assert factor(100) == pytest.approx(0.0, abs=1e-12)
    flat = load_config("unet_regnety_002", overrides=["train.scheduler=none"])
    assert _schedule(flat, 100, 10)(5) == 1.0
