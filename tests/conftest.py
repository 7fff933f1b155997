"""Shared fixtures: tiny generated datasets, the shared real sample when present, CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "landcover-sample"


def run_cli(*args: str, cwd: Path = REPO, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python src/<script> ...`` as a user would; returns the completed process."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    if not (SAMPLE / "train_labels.csv").is_file():
        pytest.skip(f"shared real sample not found at {SAMPLE} (it sits beside the repository)")
    return SAMPLE


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo dataset (30 train, 6 test patches of 32x32), generated once per session."""
    from landcover.demo import make_demo_dataset

    return make_demo_dataset(
        tmp_path_factory.mktemp("demo") / "data", n_train=30, n_test=6, size=32
    )


@pytest.fixture(scope="session")
def demo_data(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The demo dataset, validated and cached."""
    from landcover.cache import prepare_data

    return prepare_data(demo_dir, cache_dir=tmp_path_factory.mktemp("cache") / "demo", workers=2)
