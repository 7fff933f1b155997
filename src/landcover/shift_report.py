"""What the shift tests (``src/shift_test.py``) report: the two tables they print and the
results as ``--json`` writes them."""

from __future__ import annotations

import argparse
from pathlib import Path

from .newground import ClassMixResult
from .shift import SHIFTS

MIX_COLUMNS = [0, 1, 2, 3, 4, 7]  # artificial, cultivated, broadleaf, coniferous, herbaceous, water


def run_settings(args: argparse.Namespace) -> dict:
    """The prediction settings both tests ran at."""
    return {
        "dark_level": args.dark_level,
        "adapt": args.adapt,
        "per_region": args.per_region,
        "tta": args.tta,
        "hard": args.hard,
    }


def print_shift_done(kind: str, table: dict[str, dict[str, float]]) -> None:
    """One line as each change is measured: every row's KL under it."""
    print(f"{kind:10s} " + "  ".join(f"{n} {v[kind]:.5f}" for n, v in table.items()), flush=True)


def print_radiometric(table: dict[str, dict[str, float]], kinds: list[str]) -> None:
    """The radiometric table: a row's KL under each change, and its worst against none."""
    print(f"\nradiometric shift test\n{'':28s}" + "".join(f"{k:>10s}" for k in kinds) + "  worst")
    for name, row in table.items():
        changed = [row[k] for k in kinds if k != "none"]
        worst = f"{max(changed) / row['none']:6.2f}x" if changed and "none" in row else ""
        print(f"{name:28s}" + "".join(f"{row[k]:10.5f}" for k in kinds) + f"  {worst}")


def radiometric_record(table: dict[str, dict[str, float]], kinds: list[str]) -> dict:
    return {"shifts": {k: SHIFTS[k] for k in kinds}, "kl": table}


def print_class_mix(result: ClassMixResult, table_path: Path, band_rows: int) -> None:
    """Each region's mix, effective sample size, distinct patches and KL per row; then each
    row's KL on the folds as they are, the mean over regions and the worst tenth's."""
    print(f"\nclass-mix shift test ({table_path.name}, bands of {band_rows} raster rows)")
    head = f"{'region':12s}" + "".join(f"{c:>6s}" for c in ("artif", "culti", "broad", "conif"))
    head += "".join(f"{c:>6s}" for c in ("herba", "water")) + "   ess  drawn"
    print(head + "".join(f"{n[:14]:>15s}" for n in result.names))
    for j, r in enumerate(result.regions):
        mix = "".join(f"{r.target[i]:6.2f}" for i in MIX_COLUMNS)
        kls = "".join(f"{result.kl[i, j]:15.5f}" for i in range(len(result.names)))
        print(f"{r.name:12s}{mix}{r.ess:6.0f}{r.distinct:7d}{kls}")
    worst = result.worst_decile()
    print(f"\n{'':28s}{'folds':>10s}{'regions':>10s}{'worst 10%':>10s}{'mix L1':>10s}  weight")
    for i, name in enumerate(result.names):
        weight = f"{result.weights[i]:.3f}" if i < len(result.weights) else ""
        print(
            f"{name:28s}{result.clean[i]:10.5f}{result.kl[i].mean():10.5f}{worst[i]:10.5f}"
            f"{result.mix_error[i].mean():10.3f}  {weight}"
        )


def class_mix_record(
    result: ClassMixResult, table_path: Path, band_rows: int, settings: dict, weighted: bool
) -> dict:
    """The class-mix results: ``settings`` as the blend was re-tuned, each region, each row."""
    worst = result.worst_decile()
    return {
        "labels": str(table_path),
        "band_rows": band_rows,
        "blend_settings": {k: v for k, v in settings.items() if k != "row_weights"},
        "class_mix_weights": weighted,
        "regions": [
            {
                "name": r.name,
                "target": r.target.tolist(),
                "reached": r.reached.tolist(),
                "ess": r.ess,
                "distinct": r.distinct,
                "kl": dict(zip(result.names, result.kl[:, j].tolist(), strict=True)),
                "mix_l1": dict(zip(result.names, result.mix_error[:, j].tolist(), strict=True)),
            }
            for j, r in enumerate(result.regions)
        ],
        "summary": {
            name: {
                "folds": float(result.clean[i]),
                "regions_mean": float(result.kl[i].mean()),
                "worst_decile": float(worst[i]),
                "mix_l1": float(result.mix_error[i].mean()),
                **({"weight": float(result.weights[i])} if i < len(result.weights) else {}),
            }
            for i, name in enumerate(result.names)
        },
    }
