"""What produced an artifact: code version, package versions, time."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_PACKAGES = (
    "torch",
    "timm",
    "segmentation-models-pytorch",
    "geopandas",
    "rasterio",
    "optuna",
    "pandas",
    "numpy",
    "scipy",
    "lightgbm",
)


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def code_version() -> str:
    """Git commit of the repository (with ``-dirty`` if it has uncommitted changes)."""
    try:
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return _git("rev-parse", "--short=12", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def provenance() -> dict[str, object]:
    return {
        "code_version": code_version(),
        "packages": package_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
