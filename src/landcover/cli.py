"""What every command-line entry point shares: one parser class (defaults shown in ``--help``,
a usage error in one line), the repeatable ``--set KEY=VALUE`` and the same names for the
same things (``--experiments``, ``--artifacts``, ``--data``, ``--profile``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every option's default after its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text  # already said, or nothing to say
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line ("error: ...", exit 2), as every
    other error of an entry point is (``errors.cli_errors``)."""

    def __init__(self, doc: str | None, **kwargs) -> None:
        super().__init__(description=doc, formatter_class=HelpFormatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def add_set(self, example: str = "train.epochs=3 seed=1") -> None:
        """``--set KEY=VALUE ...``, repeatable: every pair of every ``--set`` is kept."""
        add_set(self, f"config overrides, repeatable (e.g. --set {example})")

    def add_experiments(self, default: str = "the profile's") -> None:
        self.add_argument(
            "--experiments",
            metavar="A,B",
            help=f"comma-separated experiment names (default: {default})",
        )

    def add_artifacts(self) -> None:
        self.add_argument(
            "--artifacts",
            type=Path,
            default=Path("."),
            metavar="DIR",
            help="where runs are kept: DIR/oof/<experiment>/, DIR/submissions/ "
            "(default: the current folder)",
        )


def add_set(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE ...`` on any parser (a subcommand's too), repeatable: every pair of
    every ``--set`` is kept."""
    parser.add_argument(
        "--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help=help
    )


def names(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None or "" -> []."""
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def oof_dir(artifacts: Path) -> Path:
    """Where the experiments of ``--artifacts DIR`` are: DIR/oof."""
    return Path(artifacts) / "oof"


def submissions_dir(artifacts: Path) -> Path:
    """Where the submissions of ``--artifacts DIR`` are: DIR/submissions."""
    return Path(artifacts) / "submissions"
