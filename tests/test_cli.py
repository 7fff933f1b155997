"""One way to call every command: the same flag names, ``--set KEY=VALUE`` repeatable and
multi-valued where configs are overridden (every pair applied), defaults in ``--help``, and a
usage error (an unknown flag) answered in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

ENTRY_POINTS = {  # each with what it requires, so that the unknown flag is what it answers
    "src/prepare.py": ["--data", "d"],
    "src/train.py": ["--check"],
    "src/blend.py": [],
    "src/predict.py": ["--model", "m", "--input", "i", "--out", "o.csv"],
    "src/score.py": [],
    "src/shift_test.py": ["s.json"],
    "src/summary.py": ["s.json"],
    "src/export.py": ["--model", "m"],
    "src/make_demo_data.py": ["out"],
    "src/benchmarks/speed.py": ["plan", "--profile", "demo"],
}


@pytest.mark.parametrize("script", sorted(ENTRY_POINTS))
def test_an_unknown_flag_is_one_line_and_help_shows_defaults(script: str):
    result = run_cli(script, *ENTRY_POINTS[script], "--no-such-flag")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "--no-such-flag" in lines[0] and "--help" in lines[0]
    shown = run_cli(script, "--help")
    assert shown.returncode == 0 and "usage:" in shown.stdout
    if script not in ("src/summary.py", "src/benchmarks/speed.py"):  # nothing to default there
        assert "(default" in shown.stdout, script


def test_train_applies_every_pair_of_every_set(demo_dir: Path):
    """Two ``--set`` flags, one with two pairs: all three reach the config (train.py's parsing
    and the config it resolves), and a bad key in the second flag is reported, not dropped."""
    from landcover.commands.train import parse_args
    from landcover.config import load_config

    args = parse_args(
        ["--check", "--set", "train.epochs=3", "seed=2", "--set", "train.batch_size=4"]
    )
    assert args.set == ["train.epochs=3", "seed=2", "train.batch_size=4"]
    config = load_config("unet_regnety_002", profile="demo", overrides=args.set)
    assert (config["train"]["epochs"], config["seed"], config["train"]["batch_size"]) == (3, 2, 4)
    bad = run_cli(
        "src/train.py", "--check", "--profile", "demo", "--experiments", "unet_regnety_002",
        "--set", "train.epochs=3", "--set", "train.epoch=4",
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown key 'train.epoch'" in bad.stderr


def test_the_plan_and_prepare_apply_repeated_and_multi_valued_sets(demo_dir: Path, tmp_path):
    plan = run_cli(
        "src/benchmarks/speed.py", "plan", "--profile", "demo", "--experiments",
        "unet_regnety_002", "--set", "train.epochs=3", "--set", "train.batch_size=4", "seed=2",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    assert "epochs 3" in plan.stdout and "batch 4" in plan.stdout
    prepared = run_cli(
        "src/prepare.py", "--data", str(demo_dir), "--cache-dir", str(tmp_path / "cache"),
        "--set", "data.n_folds=3", "data.buffer_rows=0", "--set", "data.fold_seed=1",
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    assert "-k3-s1.csv: 3 folds" in prepared.stdout and "no buffer" in prepared.stdout


def test_run_all_dry_run_picks_a_profile_by_hardware_and_applies_every_set(demo_dir: Path):
    """``--data`` without ``--profile`` on a machine without a GPU: sample-cpu, said aloud;
    ``--dry-run`` prints the resolved plan (both ``--set`` flags applied) and runs nothing."""
    result = subprocess.run(
        [str(REPO / "run_all.sh"), "--data", str(demo_dir), "--dry-run", "--experiments",
         "pixel_lightgbm_newground", "--set", "gbm.n_estimators=7", "--set", "data.n_folds=3"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "profile: sample-cpu (no CUDA GPU here" in result.stdout
    assert "rounds 7" in result.stdout and "folds 3" in result.stdout
    assert "nothing is run" in result.stdout
