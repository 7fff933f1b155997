"""The configuration folder and how its YAML files are read (one mapping a file, or one line
naming the file and the problem)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import ConfigError
from .provenance import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs"


def read_yaml(path: str | os.PathLike[str]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
