"""src/benchmarks/speed.py: every subcommand runs on tiny inputs and prints what it measures."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from landcover.cache import default_cache_dir
from landcover.config import load_config, load_profile
from landcover.demo import make_demo_dataset
from landcover.experiment import run_experiment

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it


def speed(*args: str) -> subprocess.CompletedProcess:
    done = run_cli("src/benchmarks/speed.py", *args)
    assert done.returncode == 0, done.stderr
    return done


def test_read(demo_dir: Path) -> None:
    lines = speed("read", "--data", str(demo_dir), "--workers", "2").stdout.splitlines()
    assert lines[0] == "30 patches of 32x32 (image + mask each)"
    assert [line.split()[-1] for line in lines[1:]] == ["patches/s"] * 3
    assert lines[2].startswith("TIFF, 2 threads") and lines[3].startswith("cache (memmap")


def test_loader(demo_dir: Path) -> None:
    out = speed(
        "loader", "--data", str(demo_dir), "--models", "unet_regnety_002", "--batch", "4",
        "--crop", "0", "--steps", "1", "--warmup", "1", "--threads", "1",
    ).stdout.splitlines()  # fmt: skip
    assert out[0].startswith("device cpu, batch 4, crop whole patch, 30 training patches")
    assert out[1].split() == "model data only train real train synthetic ratio".split()
    name, *rates = out[2].split()
    assert name == "unet_regnety_002" and len(rates) == 4 and all(float(r) > 0 for r in rates)


def test_model() -> None:
    out = speed(
        "model", "--models", "unet_regnety_002", "--batch", "2", "--size", "32", "--steps", "1",
        "--threads", "1", "--layouts", "channels_last,contiguous",
    ).stdout.splitlines()  # fmt: skip
    assert out[0] == "device cpu, batch 2, training crops 32px, threads 1"
    rows = [line.split() for line in out[2:]]
    assert [row[:2] for row in rows] == [
        ["unet_regnety_002", "channels_last"],
        ["unet_regnety_002", "contiguous"],
    ]
    assert all(float(v) > 0 for row in rows for v in row[2:])
    bad = run_cli("src/benchmarks/speed.py", "model", "--layouts", "rows")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "--layouts: unknown ['rows']" in bad.stderr and not bad.stdout
    none = run_cli("src/benchmarks/speed.py")
    assert none.returncode == 2 and "COMMAND" in none.stderr and none.stderr.count("\n") == 1


def test_blend() -> None:
    out = speed("blend", "--rows", "300", "--trials", "3", "--models", "2", "--folds", "3").stdout
    lines = out.splitlines()
    assert lines[0] == "2 models x 300 rows, 3 folds, 3 trials"
    assert lines[1].startswith("study only (3 trials):") and " s   KL " in lines[1]
    assert lines[2].startswith("fit_blend (study + polish + nested CV):")
    assert "nested" in lines[2] and "best single" in lines[2]


def test_scene(demo_data, demo_dir: Path, tmp_path: Path) -> None:
    """A LightGBM member trained in a second maps a 96 x 96 scene tiled from the demo patches;
    the scratch folder is removed afterwards."""
    overrides = {"gbm": {"n_estimators": 3}, "data": {"n_folds": 2}, "run": {"threads": 1}}
    config = load_config("pixel_lightgbm", profile="demo", overrides=overrides)
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    out = speed(
        "scene", "--model", str(exp_dir), "--data", str(demo_dir), "--size", "96", "--folds", "1",
        "--overlap", "8",
    ).stdout.splitlines()  # fmt: skip
    assert out[0].startswith("scene 96x96 written in")
    scratch = Path(out[0].split("(")[-1].rstrip(")"))
    assert not scratch.exists()
    assert "pixel_lightgbm" in out[1]
    assert out[2].startswith("windows of 32 px")  # the members' training patch size
    assert " windows x 1 fold models in " in out[3] and "pixels/s" in out[3]
    assert out[4].startswith("peak resident memory")


def test_estimate(demo_dir: Path) -> None:
    common = (
        "estimate", "--data", str(demo_dir), "--profile", "demo", "--experiments",
        "unet_regnety_002,pixel_lightgbm", "--n-train", "30", "--n-test", "6",
    )  # fmt: skip
    timed = speed(*common, "--smoke", "--steps", "1", "--warmup", "1", "--predict", "4")
    lines = timed.stdout.splitlines()
    assert lines[0] == "profile demo: estimate for 30 train, 6 test patches"
    name, *figures = lines[2].split()
    assert name == "unet_regnety_002" and len(figures) == 6 and figures[3] == "1"  # smoke: 1 epoch
    assert lines[3].split()[1:] == ["not", "estimated", "(LightGBM", "on", "the", "CPU)"]
    assert lines[4].startswith("network experiments:") and lines[4].endswith(" h)")
    counted = speed(*common, "--flops").stdout.splitlines()
    assert "GFLOP/patch" in counted[1] and counted[2].split()[0] == "unet_regnety_002"
    assert "PFLOP; finishing in 60 min needs a sustained" in counted[-1]


def test_plan(tmp_path: Path) -> None:
    """The resolved experiments one line each, the data's size from its CSVs (no cache built),
    each network's FLOPs and the estimate command; a data folder that is not there is said."""
    data = make_demo_dataset(tmp_path / "data", n_train=12, n_test=5, size=32)
    names = load_profile("demo")["experiments"]  # one network at least, and pixel_lightgbm
    sets = ["seed=1", "train.batch_size=4"]
    args = ("plan", "--profile", "demo", "--data", str(data), "--smoke")
    lines = speed(*args, "--set", sets[0], "--set", sets[1]).stdout.splitlines()
    assert lines[0] == (
        f"plan: profile demo, smoke, --set seed=1 train.batch_size=4: {len(names)} experiment(s)"
    )
    rows = {line.split()[0]: line for line in lines[1 : 1 + len(names)]}
    assert list(rows) == names
    net = load_config("unet_regnety_002", profile="demo", overrides=sets, smoke=True)
    assert rows["unet_regnety_002"].split()[1:] == [
        "smp", "Unet", "tu-regnety_002", "device", "cpu", "folds", str(net["data"]["n_folds"]),
        "epochs", "1", "x", "2", "steps", "batch", "4", "crop", "whole", "TTA", "1",
    ]  # fmt: skip
    gbm = load_config("pixel_lightgbm", profile="demo", overrides=sets, smoke=True)
    assert rows["pixel_lightgbm"].split()[1:] == [
        "pixel_gbm", "device", "cpu", "folds", str(gbm["data"]["n_folds"]), "rounds", "20",
        "predict", "stride", str(gbm["gbm"]["predict_stride"]),
    ]  # fmt: skip
    assert lines[1 + len(names)] == f"data: {data}: 12 train, 5 test patches of 32x32"
    assert not default_cache_dir(data).exists()
    cost = dict(line.split(maxsplit=1) for line in lines[4 + len(names) : 4 + 2 * len(names)])
    assert cost["pixel_lightgbm"] == "not estimated (LightGBM, on the CPU)"
    assert cost["unet_regnety_002"].endswith(" PFLOP") and float(cost["unet_regnety_002"][:-6]) > 0
    estimate = shlex.join([
        "python", "src/benchmarks/speed.py", "estimate", "--data", str(data), "--profile", "demo",
        "--smoke", "--set", *sets, "--n-train", "12", "--n-test", "5",
    ])  # fmt: skip
    assert lines[-1] == f"  {estimate}"

    nowhere = tmp_path / "nowhere"
    args = ("plan", "--profile", "demo", "--experiments", "pixel_lightgbm", "--data", str(nowhere))
    missing = speed(*args).stdout
    assert f"data: {nowhere}: not read (" in missing
    assert "for the full dataset's 18491 train and 5043 test patches of 256x256" in missing
    assert missing.splitlines()[-1].endswith("--experiments pixel_lightgbm")
