"""The closing summary of a run: members, blend, shift tests and time per stage.

    python src/summary.py submissions/<name>.json [--shift shift.json] [--stages stages.tsv]

``run_all.sh`` prints it at the end of every run, before the submission's path.
"""

from __future__ import annotations

from pathlib import Path

from landcover.cli import Parser
from landcover.errors import ArtifactError, cli_errors
from landcover.summary import summary


@cli_errors
def main(argv: list[str] | None = None) -> None:
    parser = Parser(__doc__)
    parser.add_argument("sidecar", type=Path, help="the submission's sidecar <name>.json")
    parser.add_argument("--shift", type=Path, help="shift_test.py --json output (default: none)")
    parser.add_argument("--stages", type=Path, help="run_all.sh's stage log (default: none)")
    args = parser.parse_args(argv)
    if not args.sidecar.is_file():
        raise ArtifactError(f"{args.sidecar}: submission sidecar not found")
    print(summary(args.sidecar, args.shift, args.stages))


if __name__ == "__main__":
    main()
