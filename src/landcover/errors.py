"""User-facing errors: one clear line naming the file or sample and the problem, no traceback."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TypeVar


class LandcoverError(Exception):
    """A problem the user can act on (bad input, missing file, mismatched artifacts)."""


class DataError(LandcoverError):
    """Input data (TIFFs, CSVs, predictions) is missing or malformed."""


class ConfigError(LandcoverError):
    """A configuration file has an unknown key, a wrong type or an invalid value."""


class ArtifactError(LandcoverError):
    """Experiment artifacts are missing, incomplete or cannot be combined."""


F = TypeVar("F", bound=Callable[..., object])


def cli_errors(main: F) -> F:
    """Wrap a command-line entry point: a LandcoverError becomes one line on stderr and exit 2."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return main(*args, **kwargs)
        except LandcoverError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse turns the error into one usage line)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number_in(low: float, high: float):
    """An argparse type: a number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a number in [{low}, {high}], got {text}")
        return value

    return parse
