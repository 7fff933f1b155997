"""Blending's outputs: the submission with its sidecars (``<name>.json``, ``<name>.oof.csv``),
the blend's test predictions, and the scores as the sidecar keeps them and blend.py prints them.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from .artifacts import folds_fingerprint
from .atomic import write_json
from .blend_inputs import BlendInputs
from .blend_model import T_RANGE, TINY, Stack, blend, describe_calibration, floor_range
from .blend_tuning import BlendFit
from .constants import CLASSES, IGNORED_CLASSES, N_CLASSES, SCORED_CLASSES
from .errors import DataError
from .metric import kl_divergence
from .provenance import provenance
from .tables import write_proportions


def default_out(now: _dt.datetime | None = None) -> Path:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return Path("submissions") / f"blend-{now:%Y%m%d-%H%M%S}.csv"


def sidecar_paths(out: Path) -> tuple[Path, Path]:
    """(<name>.json, <name>.oof.csv) next to the submission <name>.csv."""
    if out.suffix != ".csv":
        raise DataError(f"{out}: the submission path must end in .csv")
    return out.with_suffix(".json"), out.with_suffix(".oof.csv")


def full_columns(scored: np.ndarray) -> np.ndarray:
    """Scored-class proportions as the 10 submission columns; no_data and clouds get 0.

    The metric drops those two and renormalises, so the file scores exactly what was tuned.
    """
    values = np.zeros((len(scored), N_CLASSES))
    values[:, len(IGNORED_CLASSES) :] = scored
    return values


def summary(inputs: BlendInputs, fit: BlendFit) -> dict:
    """Every score of the blend, keyed for the sidecar and the printed table."""
    names = inputs.names
    best = fit.best_single
    scores = {
        "oof_kl": fit.kl,
        "nested_cv_kl": fit.nested_kl,
        "tuning_kl": fit.tuning_kl,
        "equal_weight_tuning_kl": fit.equal_tuning_kl,
        "nested_cv_fold_kl": {str(k): v for k, v in fit.nested_fold_kl.items()},
        "equal_weight_kl": fit.equal_kl,
        "best_single": {"name": names[best], "oof_kl": float(fit.single_kl[best])},
        "study_best_kl": fit.study_kl,
    }
    bench = inputs.benchmark
    if bench is not None:
        ref = float(fit.single_kl[bench])
        scores["benchmark"] = {
            "name": names[bench],
            "oof_kl": ref,
            "ratio_to_benchmark": {
                "blend_oof": fit.kl / ref,
                "blend_nested_cv": None if fit.nested_kl is None else fit.nested_kl / ref,
                "equal_weight": fit.equal_kl / ref,
                "best_single": float(fit.single_kl[best]) / ref,
            },
        }
    models = [
        {
            "name": name,
            "path": str(exp.path),
            **({"seeds": exp.meta["seed_paths"]} if exp.meta.get("seed_paths") else {}),
            "weight": float(w),
            "temperature": float(t),
            "oof_kl": float(raw),
            "own_best_temperature": float(t_alone),
            "oof_kl_at_own_best_temperature": float(kl_alone),
        }
        for name, exp, w, t, raw, t_alone, kl_alone in zip(
            names,
            inputs.experiments,
            fit.params.weights,
            fit.params.temperatures,
            fit.single_kl,
            fit.alone_temperature,
            fit.alone_kl,
            strict=True,
        )
    ]
    return {
        "experiments": models,
        "floor": fit.params.floor,
        # null: none; a class's null: it keeps the members' share (the labels lack it)
        "class_bias": calibration_record(fit.params.bias),
        "class_power": calibration_record(fit.params.power),
        "chosen_by": fit.source,
        "scores": scores,
    }


def calibration_record(values: np.ndarray | None) -> dict | None:
    """A class calibration vector as the sidecar holds it (NaN: null)."""
    if values is None:
        return None
    pairs = zip(SCORED_CLASSES, values, strict=True)
    return {c: None if np.isnan(v) else float(v) for c, v in pairs}


def write_outputs(
    out: str | os.PathLike[str], inputs: BlendInputs, fit: BlendFit, settings: dict
) -> Path:
    """Write <out>.oof.csv, <out>.json, then the submission <out> itself (validated, atomic).

    The submission comes last, so one that exists always has its sidecars.
    """
    out = Path(out)
    json_path, oof_path = sidecar_paths(out)
    oof_pred = blend(Stack.of(inputs.oof), fit.params, fit.prior)
    test_pred, calibration = blend_test(inputs, fit)
    write_proportions(
        oof_path, inputs.ids, full_columns(oof_pred), folds=inputs.folds, expected_ids=inputs.ids
    )
    first = inputs.experiments[0]
    sidecar = {
        "submission": out.name,
        "oof_predictions": oof_path.name,
        **summary(inputs, fit),
        "prior": dict(zip(SCORED_CLASSES, fit.prior.tolist(), strict=True)),
        "settings": {
            **settings,
            "temperature_range": list(T_RANGE),
            "floor_range": list(floor_range(fit.min_floor)),
            "min_floor_applied": fit.min_floor,
            "floor_uniform_share_applied": fit.floor_uniform,
            "classes_the_labels_lack": fit.lacking,
            "log_epsilon": TINY,
        },
        "labels_path": str(inputs.labels_path),
        "data_fingerprint": first.meta["data_fingerprint"],
        "folds_fingerprint": folds_fingerprint(inputs.ids, inputs.folds),
        "test_calibration": calibration,
        "n_oof": len(inputs.ids),
        "n_test": len(inputs.test_ids),
        "columns": list(CLASSES),
        "ignored_classes": f"{list(IGNORED_CLASSES)} written as 0: the metric drops them",
        **provenance(),
    }
    write_json(json_path, sidecar)
    return write_proportions(
        out, inputs.test_ids, full_columns(test_pred), expected_ids=inputs.test_ids
    )


def blend_test(inputs: BlendInputs, fit: BlendFit) -> tuple[np.ndarray, dict]:
    """The blended test predictions (n_test, 8) and how they were made.

    The temperatures were tuned on OOF rows, each predicted by one fold model, so they are
    applied to each fold model's test predictions before averaging over the folds (the blend
    is affine in each tempered model, so averaging blends is the same). Averaging first and
    tempering the mean would temper a flatter, already-averaged prediction. Experiments written
    without ``test_folds/`` (``artifacts.write_experiment`` makes it optional) fall back to that
    order, and the sidecar says so.
    """
    mean_first = blend(Stack.of(inputs.test), fit.params, fit.prior)
    if inputs.test_folds is None:
        return mean_first, {"order": "fold mean, then temperature (no test_folds/ saved)"}
    n_folds = inputs.test_folds.shape[1]
    per_fold = [
        blend(Stack.of(inputs.test_folds[:, k]), fit.params, fit.prior) for k in range(n_folds)
    ]
    test_pred = np.mean(per_fold, axis=0)
    return test_pred, {
        "order": f"temperature per fold model, then the mean of {n_folds} folds",
        "kl_from_mean_first": kl_divergence(test_pred, mean_first),
        "max_abs_difference_from_mean_first": float(np.abs(test_pred - mean_first).max()),
    }


def format_table(inputs: BlendInputs, fit: BlendFit) -> str:
    """The short report: per-model KL raw and at its own best temperature, weights, blend scores.

    T is the temperature in the blend; alone T is the one that suits the model by itself.
    """
    info = summary(inputs, fit)
    bench = info["scores"].get("benchmark")
    ref = bench["oof_kl"] if bench else None
    width = max(12, *(len(n) for n in inputs.names))

    def ratio(kl: float | None) -> str:
        return f"  {kl / ref:6.3f}x" if ref and kl is not None else ""

    head = f"{'model':<{width}}  weight      T   OOF KL  alone T  KL there"
    lines = [head + ("  vs bench" if ref else ""), "-" * (len(head) + (10 if ref else 0))]
    for m in info["experiments"]:
        lines.append(
            f"{m['name']:<{width}}  {m['weight']:6.3f}  {m['temperature']:5.2f}  "
            f"{m['oof_kl']:7.5f}  {m['own_best_temperature']:7.2f}  "
            f"{m['oof_kl_at_own_best_temperature']:8.5f}" + ratio(m["oof_kl"])
        )
    s = info["scores"]
    rows = [
        ("blend, in-sample OOF", s["oof_kl"]),
        ("blend, nested CV", s["nested_cv_kl"]),
        ("equal weights, T=1", s["equal_weight_kl"]),
        (f"best single: {s['best_single']['name']}", s["best_single"]["oof_kl"]),
    ]
    floor = f"floor {fit.params.floor:.4f} toward the training prior"
    if fit.lacking and fit.min_floor > 0:
        floor += (
            f" with a {fit.floor_uniform:g} uniform share (at least {fit.min_floor:g}: the"
            f" labels lack {', '.join(fit.lacking)})"
        )
    lines.append(f"{floor}; chosen by {fit.source}")
    if fit.params.bias is not None:
        lines.append(describe_calibration(fit.params))
    if fit.tuning_kl is not None:
        lines.append(
            f"tuned for the average region (rows weighted by the class-mix regions): weighted "
            f"OOF KL {fit.tuning_kl:.5f}, equal weights at T=1 {fit.equal_tuning_kl:.5f}; "
            "below, the training region's own rows, unweighted"
        )
    for label, kl in rows:
        shown = "n/a (one fold)" if kl is None else f"{kl:.5f}"
        lines.append(f"{label:<{width + 24}}  {shown:>7}" + ratio(kl))
    if fit.source == "single model":
        lines.append("tuning did not beat the best single model: it is used as is")
    if bench:
        lines.append(f"ratios are to the benchmark {bench['name']} (OOF KL {ref:.5f})")
    return "\n".join(lines)
