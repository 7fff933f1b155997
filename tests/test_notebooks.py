"""The notebooks run end to end (papermill, smoke mode) on a tiny generated dataset.

The kernel is started from notebooks/ as Jupyter would, so the notebooks' own search for the
repository root is exercised. Training runs once per module and is shared by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from landcover.artifacts import is_complete

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPERIMENTS = ("unet_regnety_002", "classifier_resnet18", "benchmark_unet")


def check_kernel() -> None:
    """The 'python3' kernel must run this interpreter, or the notebooks miss the packages."""
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # jupyter_client replaces a bare "python" with sys.executable
    if (
        argv[0] not in ("python", "python3")
        and Path(argv[0]).resolve() != Path(sys.executable).resolve()
    ):
        pytest.fail(f"kernel 'python3' runs {argv[0]}, not {sys.executable}")


def execute(name: str, out: Path, **parameters) -> nbformat.NotebookNode:
    """Run notebooks/<name> with papermill; raises on the first failing cell."""
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def outputs(nb: nbformat.NotebookNode, output_type: str) -> list:
    return [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == output_type]


def n_figures(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb, "display_data"))


def stray_reprs(nb: nbformat.NotebookNode) -> list[str]:
    """Object reprs shown as a cell's result (``<matplotlib.legend.Legend at 0x...>``): a cell
    whose last expression returns a matplotlib object instead of ending in ``plt.show()``."""
    texts = [o.get("data", {}).get("text/plain", "") for o in outputs(nb, "execute_result")]
    return [t for t in texts if t.startswith("<") and " at 0x" in t]


def test_committed_notebooks_carry_no_outputs() -> None:
    """Outputs belong to the executed copies (notebooks/runs/), not to the sources."""
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: a cell has outputs"
                assert cell.execution_count is None, f"{path.name}: a cell has a count"


@pytest.fixture(scope="module")
def trained(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Execute train.ipynb (smoke) for each experiment into one shared oof directory."""
    check_kernel()
    tmp = tmp_path_factory.mktemp("notebooks")
    oof_dir, runs = tmp / "oof", {}
    for exp in EXPERIMENTS:
        try:
            runs[exp] = execute(
                "train.ipynb",
                tmp / f"train-{exp}.ipynb",
                experiment=exp,
                data_dir=str(demo_dir),
                cache_dir=str(tmp / "cache"),
                oof_dir=str(oof_dir),
                profile="demo",
                smoke=True,
            )
        except papermill.PapermillExecutionError as err:
            runs[exp] = err
    return {"oof_dir": oof_dir, "runs": runs, "tmp": tmp}


def test_eda_notebook(demo_dir: Path, tmp_path: Path) -> None:
    check_kernel()
    nb = execute(
        "eda.ipynb",
        tmp_path / "eda.ipynb",
        data_dir=str(demo_dir),
        cache_dir=str(tmp_path / "cache"),
        n_patches=4,
        smoke=True,
    )
    assert not outputs(nb, "error")
    assert not stray_reprs(nb)
    assert n_figures(nb) == 4  # distribution, co-occurrence, band histograms, patches


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_train_notebook(trained: dict, experiment: str) -> None:
    nb = trained["runs"][experiment]
    if isinstance(nb, Exception):
        pytest.fail(f"train.ipynb failed for {experiment}: {nb}")
    assert is_complete(trained["oof_dir"] / experiment)
    assert not outputs(nb, "error")
    assert not stray_reprs(nb)
    # learning curves, fold and class scores, predicted vs true, patches, proportions
    assert n_figures(nb) == 6


def test_train_notebook_shows_only_the_config_changes(trained: dict) -> None:
    """The config is shown as its differences from configs/base.yaml, not dumped whole."""
    nb = trained["runs"]["unet_regnety_002"]
    text = "".join(o.text for o in outputs(nb, "stream"))
    assert "settings differ from configs/base.yaml" in text
    assert "fold_seed" not in text and "n_folds" not in text  # no YAML dump
    shown = [o.get("data", {}).get("text/plain", "") for o in outputs(nb, "display_data")]
    table = next(t for t in shown if "train.epochs" in t)
    assert "model.encoder" in table and "tu-regnety_002" in table
    assert "data.fold_seed" not in table  # a setting the experiment leaves at the base's value


def test_train_notebook_partial_folds(trained: dict, demo_dir: Path) -> None:
    """Training only some folds writes no experiment and shows no per-experiment figure."""
    tmp = trained["tmp"]
    nb = execute(
        "train.ipynb",
        tmp / "train-partial.ipynb",
        experiment="benchmark_unet",
        data_dir=str(demo_dir),
        cache_dir=str(tmp / "cache"),
        oof_dir=str(tmp / "oof-partial"),
        folds=[0],
        smoke=True,
    )
    assert not outputs(nb, "error")
    assert not stray_reprs(nb)
    assert not is_complete(tmp / "oof-partial" / "benchmark_unet")
    assert n_figures(nb) == 0
    assert any("not trained yet" in o.text for o in outputs(nb, "stream"))


def test_blend_notebook_explains_the_submitted_blend(trained: dict, demo_dir: Path) -> None:
    """The notebook reads the sidecar blend.py wrote and re-tunes nothing: its table shows
    the sidecar's weights, and a changed experiment makes it refuse, not explain another."""
    import json
    import subprocess

    out = trained["tmp"] / "subs" / "blend.csv"
    done = subprocess.run(
        [
            sys.executable,
            "src/blend.py",
            "--artifacts",
            str(trained["oof_dir"].parent),
            "--labels",
            str(demo_dir / "train_labels.csv"),
            "--trials",
            "10",
            "--no-floor",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    nb = execute(
        "blend.ipynb", trained["tmp"] / "blend.ipynb", submission=str(out.with_suffix(".json"))
    )
    assert not outputs(nb, "error")
    assert not stray_reprs(nb)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["floor"] == 0.0  # --no-floor: the notebook shows this blend, floor and all
    shown = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs(nb, "display_data"))
    for model in side["experiments"]:  # the models table: name, weight, temperature, ...
        row = next(line.split() for line in shown.splitlines() if line.startswith(model["name"]))
        assert float(row[1]) == pytest.approx(model["weight"], abs=1e-5), model["name"]
        assert float(row[2]) == pytest.approx(model["temperature"], abs=1e-2), model["name"]
    text = "".join(o.text for o in outputs(nb, "stream"))
    assert "floor 0.0000" in text and "reproduces" in text
    assert n_figures(nb) >= 4


def test_train_notebook_stays_compact(trained: dict) -> None:
    """No progress bars stored in the executed notebook (they go to the terminal)."""
    nb = trained["runs"]["unet_regnety_002"]
    text = "".join(o.text for o in outputs(nb, "stream"))
    assert "it/s" not in text and "step/s" not in text and "\r" not in text
    assert len(text.splitlines()) < 120, len(text.splitlines())


def test_predict_notebook_maps_a_mosaic(trained: dict, demo_dir: Path) -> None:
    import subprocess

    out = trained["tmp"] / "subs-map" / "blend.csv"
    done = subprocess.run(
        [sys.executable, "src/blend.py", "--artifacts", str(trained["oof_dir"].parent), "--labels",
         str(demo_dir / "train_labels.csv"), "--trials", "5", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = trained["tmp"] / "map-runs"
    nb = execute(
        "predict.ipynb", trained["tmp"] / "predict.ipynb", submission=str(out.with_suffix(".json")),
        data_dir=str(demo_dir), top_left=1, rows=2, cols=2, out_dir=str(runs), smoke=True,
    )  # fmt: skip
    assert not outputs(nb, "error")
    assert not stray_reprs(nb)
    assert n_figures(nb) == 1
    assert (runs / "map.tif").is_file() and (runs / "mosaic.tif").is_file()
    import pandas as pd

    assert len(pd.read_csv(runs / "cells.csv")) == 4
