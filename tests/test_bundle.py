"""export.py: the demo blend as one bundle that predicts alone, from any folder; a damaged
bundle refused in one line; the model card's figures are the run's; the console scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_cli

from landcover.bundle import CARD, MANIFEST, export_bundle
from landcover.constants import CLASSES, SCORED_CLASSES
from landcover.errors import ArtifactError
from landcover.model_card import card_path, write_model_card
from landcover.predictor import Predictor
from landcover.tables import read_proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

pytest_plugins = ("demo_blend",)  # the session's trained demo blend: the ``blend`` fixture
BIN = Path(sys.executable).parent  # the environment's console scripts


@pytest.fixture
def run_copy(blend: Path, tmp_path: Path) -> Path:
    """The demo run (oof/ and subs/) copied, its sidecar pointing at the copy: the sidecar."""
    shutil.copytree(blend.parents[1], tmp_path / "run")
    sidecar = tmp_path / "run" / "subs" / "blend.json"
    record = json.loads(sidecar.read_text())
    for model in record["experiments"]:
        model["path"] = str(tmp_path / "run" / "oof" / model["name"])
    sidecar.write_text(json.dumps(record, indent=2))
    return sidecar


def script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """A console script of the environment, run from ``cwd``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_a_bundle_reproduces_the_submission_alone(run_copy: Path, demo_dir: Path, tmp_path):
    """Exported to a .tar, moved elsewhere, with the experiments deleted: predict.py, run from
    another folder, gives the submission's test predictions."""
    made = run_cli("src/export.py", "--model", str(run_copy), "--out", str(tmp_path / "b.tar"))
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1] == str(tmp_path / "b.tar")
    (tmp_path / "elsewhere").mkdir()
    moved = shutil.move(tmp_path / "b.tar", tmp_path / "elsewhere" / "model.tar")
    shutil.rmtree(run_copy.parents[1] / "oof")
    out = tmp_path / "again.csv"
    again = script(
        "landcover-predict", "--model", str(moved), "--input", str(demo_dir), "--out", str(out),
        "--device", "cpu", cwd=tmp_path / "elsewhere",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    mine = read_proportions(out, require_sum_to_one=True, allow_fold=False)
    theirs = read_proportions(run_copy.with_suffix(".csv"), allow_fold=False)
    np.testing.assert_allclose(mine.select(theirs.ids).values, theirs.values, rtol=0, atol=1e-6)


def damage(bundle: Path, how: str) -> str:
    """Damage a copy of ``bundle`` in place; returns the file the refusal must name."""
    model = next(bundle.glob("members/unet_regnety_002/folds/fold1/model.pt"))
    if how == "missing":
        model.unlink()
    elif how == "changed":
        data = bytearray(model.read_bytes())
        data[-1] ^= 0xFF
        model.write_bytes(bytes(data))
    else:  # an older format
        manifest = json.loads((bundle / MANIFEST).read_text())
        manifest["format_version"] = 0
        (bundle / MANIFEST).write_text(json.dumps(manifest))
        return f"{bundle}/{MANIFEST}"
    return f"{bundle}/{model.relative_to(bundle)}"


def test_a_damaged_bundle_is_refused_in_one_line(run_copy: Path, demo_dir: Path, tmp_path):
    bundle, _ = export_bundle(run_copy, tmp_path / "bundle")
    assert len(Predictor.load(bundle, device="cpu").members) == 3
    refusals = {}
    for how, words in (
        ("missing", "missing from the bundle"),
        ("changed", "checksum mismatch"),
        ("older", "bundle format 0, this code reads 1"),
    ):
        copy = tmp_path / how
        shutil.copytree(bundle, copy)
        named = damage(copy, how)
        with pytest.raises(ArtifactError) as err:
            Predictor.load(copy, device="cpu")
        assert str(err.value).startswith(f"{named}: {words}"), err.value
        refusals[how] = str(err.value)
    refused = run_cli(
        "src/predict.py", "--model", str(tmp_path / "changed"), "--input", str(demo_dir),
        "--out", str(tmp_path / "no.csv"),
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [f"error: {refusals['changed']}"]
    assert not (tmp_path / "no.csv").exists()


def test_members_under_the_least_weight_are_left_out(run_copy: Path, tmp_path: Path):
    """At --min-weight 0.25 the 0.2 member goes, the others are renormalised, and export
    says how much the submission's test predictions move."""
    made = run_cli(
        "src/export.py", "--model", str(run_copy), "--out", str(tmp_path / "two"),
        "--min-weight", "0.25",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "unet_regnety_002: left out (weight 0.2)" in made.stdout
    assert "changes the submission's test predictions by" in made.stdout
    manifest = json.loads((tmp_path / "two" / MANIFEST).read_text())
    weights = {m["name"]: m["weight"] for m in manifest["members"]}
    assert weights == pytest.approx({"classifier_resnet18": 0.625, "pixel_lightgbm": 0.375})
    assert manifest["left_out"] == [{"name": "unet_regnety_002", "weight": 0.2}]
    assert not (tmp_path / "two" / "members" / "unet_regnety_002").exists()


def test_the_model_card_holds_the_runs_figures(run_copy: Path, tmp_path: Path):
    """The card in a bundle and beside the submission: training ids, rows, class shares and
    absent classes from the labels; members and weights, the CV design and the nested-CV KL
    from the sidecar; the shift test's figures from <name>.shift.json beside it."""
    shift = {
        "radiometric": {"kl": {"blend": {"none": 0.31, "gain": 0.52, "haze": 0.47}}},
        "class_mix": {"summary": {"blend": {"folds": 0.31, "regions_mean": 0.44,
                                            "worst_decile": 0.83, "mix_l1": 0.2}}},
    }  # fmt: skip
    run_copy.with_suffix(".shift.json").write_text(json.dumps(shift))
    bundle, _ = export_bundle(run_copy, tmp_path / "bundle")
    facts = json.loads((bundle / MANIFEST).read_text())["card"]
    text = (bundle / CARD).read_text()
    sidecar = json.loads(run_copy.read_text())
    labels = read_proportions(sidecar["labels_path"])
    oof = read_proportions(run_copy.with_suffix(".oof.csv"))
    shares = labels.select(oof.ids).values.mean(axis=0)
    data = facts["training_data"]
    assert data["n_ids"] == sidecar["n_oof"] == len(oof.ids)
    rows = (oof.ids - 1) // data["row_width"]
    assert (data["first_row"], data["last_row"]) == (rows.min(), rows.max())
    assert data["n_rows"] == len(np.unique(rows))
    assert [data["class_shares"][c] for c in CLASSES] == pytest.approx(shares.tolist())
    absent = [c for c in SCORED_CLASSES if shares[CLASSES.index(c)] == 0]
    assert data["absent_classes"] == absent
    assert f"{data['n_ids']} sample ids" in text
    assert ", ".join(f"{c} {s:.4f}" for c, s in zip(CLASSES, shares, strict=True)) in text
    for model in sidecar["experiments"]:
        assert f"| {model['name']} |" in text and f"| {model['weight']:.4f} |" in text
        assert f"{model['oof_kl']:.5f}" in text
    nested = sidecar["scores"]["nested_cv_kl"]
    assert facts["validation"]["nested_cv_kl"] == nested and f"nested-CV KL {nested:.5f}" in text
    assert "2 folds" in text and "buffer" in text
    assert "| blend | 0.31000 | 0.52000 (gain) | 0.44000 | 0.83000 |" in text
    for words in ("B, G, R, NIR", "10,000", "10 m pixels", "ENS Challenge Data 2021",
                  "Preligens", "## Intended use", "## Known limits"):  # fmt: skip
        assert words in text, words
    written = write_model_card(run_copy)
    assert written == card_path(run_copy) and written.name == "blend.model_card.md"
    assert written.read_text() == text  # nothing left out: the same card
    written.unlink()
    done = run_cli("src/export.py", "--model", str(run_copy), "--card-only")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == str(written) and written.read_text() == text


def test_console_scripts_run_from_any_folder(tmp_path: Path):
    """What ``pip install -e .`` installs: landcover-predict and landcover-export."""
    for name in ("landcover-predict", "landcover-export"):
        done = script(name, "--help", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "--model" in done.stdout and "--out" in done.stdout
    assert (
        'landcover-export = "landcover.commands.export:main"'
        in (REPO / "pyproject.toml").read_text()
    )


def test_one_experiment_exports_too(blend: Path, demo_data, tmp_path: Path):
    """An experiment directory alone: weight 1, T 1, no floor; its card gives its own OOF KL."""
    exp = blend.parents[1] / "oof" / "pixel_lightgbm"
    bundle, _ = export_bundle(exp, tmp_path / "gbm")
    images = np.asarray(demo_data.test_images)
    mine = Predictor.load(bundle, device="cpu").patch_proportions(images)
    theirs = Predictor.load(exp, device="cpu").patch_proportions(images)
    np.testing.assert_array_equal(mine, theirs)
    scores = json.loads((exp / "scores.json").read_text())
    text = (bundle / CARD).read_text()
    assert f"OOF KL {scores['oof_kl']:.5f} (each row predicted by the fold model" in text
    assert "| pixel_lightgbm | pixel_gbm, per-pixel | 1.0000 | 1.000 | 2 |" in text
