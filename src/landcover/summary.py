"""What a run of the pipeline ends with: its members (OOF KL, blend weight, temperature,
training time), the blend's scores, the shift tests' summary and the time of each stage,
read from what the run wrote (the submission's sidecar, each experiment's fold records, the
shift test's JSON, ``run_all.sh``'s stage log)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path


def training_seconds(exp_dir: Path) -> float:
    """The seconds an experiment's folds spent training (their ``done.json``)."""
    total = 0.0
    for done in sorted(Path(exp_dir).glob("folds/fold*/done.json")):
        total += float(json.loads(done.read_text()).get("train_seconds", 0.0))
    return total


def stage_times(path: Path) -> list[tuple[str, float]]:
    """(stage, seconds) from ``run_all.sh``'s stage log: one "<seconds since start>\\t<stage>"
    line as each stage starts, and a last line "<seconds>\\tdone"."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if "\t" in line:
            at, name = line.split("\t", 1)
            rows.append((name, float(at)))
    return [(name, nxt - at) for (name, at), (_, nxt) in itertools.pairwise(rows)]


def minutes(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def summary(sidecar: Path, shift: Path | None = None, stages: Path | None = None) -> str:
    """The closing table of a run, as text."""
    blend = json.loads(Path(sidecar).read_text())
    scores = blend["scores"]
    width = max(24, *(len(m["name"]) for m in blend["experiments"]))
    lines = [f"{'member':<{width}}  OOF KL  weight      T  training", "-" * (width + 36)]
    for m in blend["experiments"]:
        path = Path(m["path"])
        trained = minutes(training_seconds(path)) if path.is_dir() else "?"
        lines.append(
            f"{m['name']:<{width}}  {m['oof_kl']:.5f}  {m['weight']:6.3f}  "
            f"{m['temperature']:5.2f}  {trained:>8s}"
        )
    lines.append(f"{'blend, nested CV':<{width}}  {scores['nested_cv_kl']:.5f}")
    lines.append(f"{'blend, in-sample OOF':<{width}}  {scores['oof_kl']:.5f}")
    if shift is not None and Path(shift).is_file():
        lines += ["", *shift_lines(json.loads(Path(shift).read_text()))]
    if stages is not None and Path(stages).is_file():
        lines += ["", "time per stage:"]
        lines += [f"  {minutes(s):>8s}  {name}" for name, s in stage_times(stages)]
    return "\n".join(lines)


def shift_lines(result: dict) -> list[str]:
    """The shift tests in a few lines: the radiometric worst change over clean, the class-mix
    mean and worst tenth over regions, for every member and the blend."""
    radiometric = (result.get("radiometric") or {}).get("kl", {})
    mix = (result.get("class_mix") or {}).get("summary", {})
    names = list(dict.fromkeys([*radiometric, *mix]))
    if not names:
        return []
    head = f"{'shift tests':<28s}{'clean':>9s}{'worst':>9s}{'regions':>9s}{'worst 10%':>10s}"
    lines = [head]
    for name in names:
        row = radiometric.get(name, {})
        changed = [v for k, v in row.items() if k != "none"]
        clean = f"{row['none']:9.5f}" if "none" in row else f"{'':9s}"
        worst = f"{max(changed) / row['none']:8.2f}x" if changed and "none" in row else f"{'':9s}"
        m = mix.get(name)
        regions = f"{m['regions_mean']:9.5f}{m['worst_decile']:10.5f}" if m else ""
        lines.append(f"{name[:28]:<28s}{clean}{worst}{regions}")
    return lines
