"""Beyond one process: folds of one experiment in separate processes at once, every fold as a
Ray task on a local cluster (with declared GPUs, on the CPU), and one fold trained by two
torchrun processes (gloo) against one process."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO

from landcover.artifacts import load_experiment
from landcover.config import load_config
from landcover.experiment import run_experiment

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

SMOKE = [
    "data.n_folds=3",
    "train.epochs=2",
    "train.steps_per_epoch=2",
    "train.batch_size=8",
    "predict.tta=1",
    "run.threads=1",
    "run.device=cpu",
]


def train_cmd(demo_dir: Path, tmp: Path, oof: str, *extra: str, launcher=(sys.executable,)):
    return [
        *launcher, "src/train.py", "--experiments", "unet_regnety_002", "--data", str(demo_dir),
        "--cache-dir", str(tmp / "cache"), "--artifacts", str(tmp / oof), "--profile", "demo",
        *extra, "--set", *SMOKE,
    ]  # fmt: skip


def test_folds_of_one_experiment_in_separate_processes(demo_dir: Path, tmp_path: Path):
    """Two train.py processes share out the folds of one experiment, both with --force: each
    resets only its own folds, and the experiment is assembled once, equal to one process's."""
    ref = subprocess.run(train_cmd(demo_dir, tmp_path, "ref"), cwd=REPO, capture_output=True)
    assert ref.returncode == 0, ref.stderr.decode()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            train_cmd(demo_dir, tmp_path, "shared", "--folds", folds, "--force"),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for folds in ("0", "1,2")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-2000:] for o in outs]
    shared = tmp_path / "shared" / "oof" / "unet_regnety_002"
    alone = tmp_path / "ref" / "oof" / "unet_regnety_002"
    for name in ("oof.csv", "test.csv"):
        assert (shared / name).read_bytes() == (alone / name).read_bytes(), name
    assert not (tmp_path / "shared" / "oof" / ".work" / "unet_regnety_002").exists()
    printed = [o[0].decode() for o in outs]
    assert sum(str(shared) in text for text in printed) >= 1  # whoever finished last wrote it


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_matches_the_local_engine(demo_data, tmp_path: Path, ray_cluster, monkeypatch):
    """Every fold is a task (two at a time on 2 declared GPUs); each fails once after its first
    epoch and is retried, resuming; the driver alone writes oof/; the results are the local
    engine's, byte for byte. The LightGBM member runs as a CPU task beside them."""
    from landcover.ray_engine import run_on_ray

    overrides = [*SMOKE, "run.device=auto", "run.cpus_per_job=1", "run.gpus_per_job=1"]
    configs = [
        load_config("unet_regnety_002", profile="demo", overrides=overrides),
        load_config("pixel_lightgbm", profile="demo", overrides=[*overrides, "gbm.n_estimators=8"]),
    ]
    for config in configs:
        run_experiment(config, demo_data, oof_dir=tmp_path / "local", log=lambda _: None)
    monkeypatch.setenv("LANDCOVER_FAIL_ONCE", str(tmp_path / "failures"))
    written = run_on_ray(configs, demo_data, tmp_path / "ray", log=lambda _: None)
    for config in configs:
        name = config["experiment"]
        assert written[name] == tmp_path / "ray" / name
        for file in ("oof.csv", "test.csv"):
            local = (tmp_path / "local" / name / file).read_bytes()
            assert (tmp_path / "ray" / name / file).read_bytes() == local, (name, file)
    exp = load_experiment(tmp_path / "ray" / "unet_regnety_002")
    assert exp.meta["assembled_by"]["pid"] == os.getpid()  # the driver
    done = [
        json.loads((exp.path / "folds" / f"fold{k}" / "done.json").read_text()) for k in range(3)
    ]
    assert all(d["resumed_after_epoch"] == 1 for d in done)  # failed once, resumed, same result
    failed = sorted(p.name for p in (tmp_path / "failures").iterdir())  # every fold of both, once
    assert failed == sorted(f"{c['experiment']}.fold{k}.rank0" for c in configs for k in range(3))
    attempts = [
        [json.loads(line) for line in (exp.path / "folds" / f"fold{k}" / "attempts.jsonl").open()]
        for k in range(3)
    ]
    assert all(len(a) == 2 for a in attempts)  # the failed attempt, then its retry
    first = sorted((a[0]["started"], a[1]["started"]) for a in attempts)  # until it failed
    assert any(b[0] < a[1] for a, b in itertools.pairwise(first))  # two folds at once
    assert all(a[0]["pid"] != os.getpid() for a in attempts)  # tasks in worker processes


DDP = ["--folds", "0", "--set", *SMOKE, "model.params={decoder_use_norm: false}"]


def ddp_cmd(demo_dir: Path, tmp: Path, oof: str, processes: int) -> list[str]:
    launcher = (sys.executable,)
    if processes > 1:
        launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={processes}")  # fmt: skip
    cmd = train_cmd(demo_dir, tmp, oof, launcher=launcher)
    cmd[cmd.index("unet_regnety_002")] = "unet_convnext_atto"  # LayerNorm only: no BatchNorm
    return cmd[: cmd.index("--set")] + DDP


def final_weights(tmp: Path, oof: str) -> dict:
    path = tmp / oof / "oof" / ".work" / "unet_convnext_atto" / "fold0" / "final.pt"
    return torch.load(path, weights_only=True)


def test_two_torchrun_processes_train_the_same_model_as_one(demo_dir: Path, tmp_path: Path):
    """Same global batch split between 2 gloo ranks (a model without BatchNorm, whose
    statistics would differ per slice): the weights equal one process's; rank 0 alone writes
    (a write from rank 1 raises); a run interrupted after epoch 1 resumes to the same weights."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    for oof, n in (("one", 1), ("two", 2)):
        done = subprocess.run(ddp_cmd(demo_dir, tmp_path, oof, n), cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = final_weights(tmp_path, "one"), final_weights(tmp_path, "two")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    fold = tmp_path / "two" / "oof" / ".work" / "unet_convnext_atto" / "fold0"
    assert json.loads((fold / "done.json").read_text())["world_size"] == 2
    ref_val = np.load(
        tmp_path / "one" / "oof" / ".work" / "unet_convnext_atto" / "fold0" / "val.npy"
    )
    np.testing.assert_allclose(np.load(fold / "val.npy"), ref_val, atol=1e-5)

    failing = {**env, "LANDCOVER_FAIL_ONCE": str(tmp_path / "failures")}
    cmd = ddp_cmd(demo_dir, tmp_path, "resumed", 2)
    first = subprocess.run(cmd, cwd=REPO, env=failing, capture_output=True, text=True)
    assert first.returncode != 0 and "injected failure" in first.stderr
    again = subprocess.run(cmd, cwd=REPO, env=failing, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = final_weights(tmp_path, "resumed")
    assert all(torch.equal(resumed[name], two[name]) for name in two)


def test_run_all_trains_cpu_members_beside_the_networks(tmp_path: Path):
    """--cpu-beside (the default when networks train on a GPU): the LightGBM member trains in
    the background while the networks train; run_all waits for both, and when the background
    job fails it names that stage. (Faked on a CPU; the failure is injected.) Its artifacts go
    under tmp_path (--artifacts), not into the repository's demo/smoke."""
    env = {
        **os.environ,
        "LANDCOVER_FAIL_ONCE": str(tmp_path / "failures"),
        "LANDCOVER_FAIL_EXPERIMENT": "pixel_lightgbm",
    }
    result = subprocess.run(
        [str(REPO / "run_all.sh"), "--smoke", "--force", "--cpu-beside",
         "--experiments", "unet_regnety_002,pixel_lightgbm", "--artifacts", str(tmp_path / "a")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    stages = [line for line in result.stdout.splitlines() if line.startswith("==>")]
    beside = next(i for i, s in enumerate(stages) if "train pixel_lightgbm beside" in s)
    network = next(i for i, s in enumerate(stages) if "train unet_regnety_002 (" in s)
    assert beside < network  # started first, in the background
    assert (tmp_path / "a/oof/unet_regnety_002/oof.csv").is_file()  # the network finished
    assert "FAILED at stage: train pixel_lightgbm beside the GPU experiments" in result.stderr
    assert "injected failure" in (tmp_path / "a/notebooks/runs/pixel_lightgbm.log").read_text()
    assert f"artifacts: {tmp_path / 'a'}/oof/" in result.stdout
