"""The model card: what a trained model is, what it learned from, how it was validated, and
where it should not be trusted, in one page that travels with it (every bundle's
MODEL_CARD.md, and ``<name>.model_card.md`` beside a submission).

Every figure is read from the run's artifacts (the sidecar and its scores, the experiments'
metadata, the training labels, the shift test's ``<name>.shift.json`` when there is one) and
kept as data too (``card_facts``; a bundle's bundle.json holds them), so a test can hold the
text to the artifacts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .atomic import write_text
from .constants import CLASSES, OFFICIAL_ROW_WIDTH, PATCH_SIZE, SCORED_CLASSES
from .errors import DataError
from .folds import FoldScheme
from .members.base import REGISTRY
from .model_source import MemberFiles, ModelSource, source_of
from .tables import align, read_proportions

CHALLENGE = (
    'ENS Challenge Data 2021, "Land cover predictive modeling from satellite images", '
    "proposed by Preligens: https://challengedata.ens.fr/challenges/48 (labels derived from "
    "ESA's S2GLC land cover map of Europe)"
)


def _member(m: MemberFiles, oof_kl: float | None) -> dict:
    kind = (m.config.get("model") or {}).get("kind")
    if kind in REGISTRY:
        kind = f"{kind}, {'per-pixel' if REGISTRY[kind].predicts_masks else 'image-level'}"
    return {
        "name": m.name,
        "kind": kind or "not recorded",
        "weight": m.weight,
        "temperature": m.temperature,
        "folds": m.n_folds,
        "oof_kl": oof_kl,
    }


def _scheme(meta: dict) -> str:
    try:
        return FoldScheme(**meta["fold_scheme"]).describe()
    except (KeyError, TypeError):
        return "not recorded"


def _training(ids: np.ndarray, truth: np.ndarray, labels: Path, meta: dict) -> dict:
    width = int((meta.get("fold_scheme") or {}).get("row_width") or OFFICIAL_ROW_WIDTH)
    rows = (np.asarray(ids, dtype=np.int64) - 1) // width
    shares = np.asarray(truth, dtype=np.float64).mean(axis=0)
    return {
        "n_ids": len(ids),
        "labels": Path(labels).name,
        "row_width": width,
        "first_row": int(rows.min()),
        "last_row": int(rows.max()),
        "n_rows": len(np.unique(rows)),
        "patch_size": int(meta.get("patch_size", PATCH_SIZE)),
        "class_shares": dict(zip(CLASSES, shares.tolist(), strict=True)),
        "absent_classes": [c for c in SCORED_CLASSES if shares[CLASSES.index(c)] == 0],
        "data_fingerprint": meta.get("data_fingerprint"),
    }


def _shift(path: Path) -> dict | None:
    """The shift test's figures (``shift_test.py --json``) per member and the blend."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    radiometric = (result.get("radiometric") or {}).get("kl") or result.get("kl") or {}
    mix = (result.get("class_mix") or {}).get("summary") or {}
    return {"file": path.name, "radiometric": radiometric, "class_mix": mix}


def card_facts(source: ModelSource) -> dict:
    """Every figure the card shows, from ``source``'s artifacts."""
    first = source.members[0]
    if source.submitted is not None:
        sub = source.submitted
        scores = sub.sidecar["scores"]
        kls = {e["name"]: e["oof_kl"] for e in sub.sidecar["experiments"]}
        training = _training(sub.inputs.ids, sub.inputs.truth, sub.inputs.labels_path, first.meta)
        validation = {
            "kind": "blend",
            "nested_cv_kl": scores.get("nested_cv_kl"),
            "nested_cv_fold_kl": scores.get("nested_cv_fold_kl", {}),
            "in_sample_oof_kl": scores.get("oof_kl"),
            "best_single": scores.get("best_single"),
        }
        shift = _shift(source.path.with_suffix(".shift.json"))
    else:
        exp = source.experiment
        labels = Path(first.meta.get("labels_path", ""))
        if not labels.is_file():
            raise DataError(f"{labels}: the training labels (meta.json's labels_path) not found")
        truth = align(read_proportions(labels, what="train labels"), exp.oof.ids, what=str(labels))
        kls = {exp.name: exp.scores.get("oof_kl")}
        training = _training(exp.oof.ids, truth.values, labels, first.meta)
        validation = {
            "kind": "experiment",
            "oof_kl": exp.scores.get("oof_kl"),
            "fold_kl": exp.scores.get("fold_kl", {}),
        }
        shift = None
    validation["scheme"] = _scheme(first.meta)
    return {
        "name": source.path.stem,
        "members": [_member(m, kls.get(m.name)) for m in source.members],
        "left_out": [{"name": m.name, "weight": m.weight} for m in source.left_out],
        "floor": source.floor,
        "class_calibration": source.bias is not None,
        "training_data": training,
        "validation": validation,
        "shift_tests": shift,
        "code_version": first.meta.get("code_version"),
    }


def _kl(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.5f}"


def render_card(facts: dict) -> str:
    """MODEL_CARD.md from ``card_facts``."""
    data, val = facts["training_data"], facts["validation"]
    n = len(facts["members"])
    lines = [
        f"# Model card: {facts['name']}",
        "",
        f"Predicts the share of {len(SCORED_CLASSES)} land cover classes in 4-band Sentinel-2 "
        f"patches (the Preligens land cover challenge): {'a blend of ' if n > 1 else ''}{n} "
        f"member{'s' if n > 1 else ''}, code {facts['code_version']}.",
        "",
        "## Intended use",
        "",
        "Land cover proportions of Sentinel-2 patches, tiles, grid cells or sites "
        "(`predict.py`), and a class map, on ground like the training region's. The figures "
        "below say how far that holds; a new region's own labelled sample says more.",
        "",
        "## Training data",
        "",
        f"- {data['n_ids']} sample ids ({data['labels']}), {data['patch_size']} px patches, "
        f"raster rows {data['first_row']} to {data['last_row']} ({data['n_rows']} rows of "
        f"{data['row_width']} ids); data fingerprint {data['data_fingerprint']}",
        "- class shares of the training labels: "
        + ", ".join(f"{c} {s:.4f}" for c, s in data["class_shares"].items()),
        "- classes absent from the training labels: "
        + (", ".join(data["absent_classes"]) or "none"),
        "",
        "## Members",
        "",
        "| member | kind | weight | temperature | folds | OOF KL |",
        "|---|---|---|---|---|---|",
        *(
            f"| {m['name']} | {m['kind']} | {m['weight']:.4f} | {m['temperature']:.3f} | "
            f"{m['folds']} | {_kl(m['oof_kl'])} |"
            for m in facts["members"]
        ),
        "",
        f"Floor {facts['floor']:.4f} toward the training prior; class calibration "
        f"{'on' if facts['class_calibration'] else 'off'}."
        + "".join(f" Left out: {m['name']} (weight {m['weight']:.2g})." for m in facts["left_out"]),
        "",
        "## Validation",
        "",
        f"- folds: {val['scheme']} (spatial: bands of whole raster rows)",
        *_validation_lines(val),
        "",
        "## Shift tests",
        "",
        *_shift_lines(facts["shift_tests"]),
        "",
        "## Known limits",
        "",
        "- classes never seen in training: "
        + (", ".join(data["absent_classes"]) or "none")
        + "; the model gives them at most the floor's share",
        "- expects surface reflectance x 10,000 (uint16), bands in the order B, G, R, NIR, "
        f"10 m pixels; windows of {data['patch_size']} px, as trained",
        "- no_data and clouds are not predicted (the challenge's metric drops them): the "
        "proportions and the map are of the 8 other classes",
        "- scores are on the training region's own folds; new ground may score worse "
        "(radiometry, class mix, context: see the shift tests)",
        "",
        "## How to cite",
        "",
        CHALLENGE,
        "",
    ]
    return "\n".join(lines)


def _validation_lines(val: dict) -> list[str]:
    if val["kind"] == "experiment":
        folds = ", ".join(f"{k}: {v:.5f}" for k, v in val["fold_kl"].items())
        return [
            f"- OOF KL {_kl(val['oof_kl'])} (each row predicted by the fold model that did not "
            f"train on it; nothing tuned on them); per fold {folds}"
        ]
    folds = ", ".join(f"{k}: {v:.5f}" for k, v in val["nested_cv_fold_kl"].items())
    best = val.get("best_single") or {}
    return [
        f"- nested-CV KL {_kl(val['nested_cv_kl'])}: each fold scored by the blend tuned "
        f"without it (the honest figure); per fold {folds or 'n/a'}",
        f"- in-sample OOF KL {_kl(val['in_sample_oof_kl'])}: the blend tuned on the rows it "
        "scores (optimistic)",
        f"- best single member: {best.get('name')}, OOF KL {_kl(best.get('oof_kl'))}",
    ]


def _shift_lines(shift: dict | None) -> list[str]:
    if not shift:
        return ["None beside the sidecar (`src/shift_test.py SIDECAR --json <name>.shift.json`)."]
    lines = [
        f"From {shift['file']}: KL on the held-out folds as they are (clean), under the worst "
        "radiometric change, and over regions resampled to other class mixes.",
        "",
        "| model | clean | worst change | regions mean | worst 10% of regions |",
        "|---|---|---|---|---|",
    ]
    for name in dict.fromkeys([*shift["radiometric"], *shift["class_mix"]]):
        row = shift["radiometric"].get(name, {})
        changed = {k: v for k, v in row.items() if k != "none"}
        worst = max(changed, key=changed.get) if changed else None
        mix = shift["class_mix"].get(name, {})
        lines.append(
            f"| {name} | {_kl(row.get('none'))} | "
            + (f"{changed[worst]:.5f} ({worst})" if worst else "n/a")
            + f" | {_kl(mix.get('regions_mean'))} | {_kl(mix.get('worst_decile'))} |"
        )
    return lines


def card_path(sidecar: str | os.PathLike[str]) -> Path:
    """Where the card of submission ``<name>.json`` goes: ``<name>.model_card.md``."""
    return Path(sidecar).with_suffix(".model_card.md")


def write_model_card(
    sidecar_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Write the card of a submission's blend beside it (``card_path``), or at ``out``."""
    out = Path(out) if out else card_path(sidecar_path)
    write_text(out, render_card(card_facts(source_of(sidecar_path))))
    return out
