"""The notebooks run end to end (papermill, smoke mode) on a tiny generated dataset.

The kernel is started from notebooks/ as Jupyter would, so the notebooks' own search for the
repository root is exercised. Training runs once per module and is shared by the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest

from landcover.artifacts import is_complete

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
    assert n_figures(nb) == 4  # distribution, co-occurrence, band histograms, patches


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_train_notebook(trained: dict, experiment: str) -> None:
    nb = trained["runs"][experiment]
    if isinstance(nb, Exception):
        pytest.fail(f"train.ipynb failed for {experiment}: {nb}")
    assert is_complete(trained["oof_dir"] / experiment)
    assert not outputs(nb, "error")
    # learning curves, fold and class scores, predicted vs true, patches, proportions
    assert n_figures(nb) == 6


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
    assert not is_complete(tmp / "oof-partial" / "benchmark_unet")
    assert n_figures(nb) == 0
    assert any("not trained yet" in o.text for o in outputs(nb, "stream"))


def test_blend_notebook(trained: dict, demo_dir: Path) -> None:
    assert all(is_complete(trained["oof_dir"] / exp) for exp in EXPERIMENTS)
    nb = execute(
        "blend.ipynb",
        trained["tmp"] / "blend.ipynb",
        oof_dir=str(trained["oof_dir"]),
        labels=str(demo_dir / "train_labels.csv"),
        smoke=True,
    )
    assert not outputs(nb, "error")


def test_eda_statistics() -> None:
    """Pixel counts, class shares and co-occurrence on hand-made masks."""
    from landcover import eda

    masks = np.zeros((3, 2, 2), dtype=np.uint8)
    masks[0] = [[2, 2], [3, 3]]
    masks[1] = [[3, 3], [3, 9]]
    masks[2] = [[9, 9], [9, 9]]
    counts = eda.pixel_counts(masks, chunk=2)
    assert counts[:, [2, 3, 9]].tolist() == [[2, 2, 0], [0, 3, 1], [0, 0, 4]]
    table = eda.class_distribution(counts)
    assert table.loc["water", "pixels"] == pytest.approx(5 / 12)
    assert table.loc["water", "images"] == pytest.approx(2 / 3)
    both = eda.cooccurrence(counts)
    assert both.loc["cultivated", "water"] == 1
    assert both.loc["artificial", "water"] == 0
    assert both.loc["water", "water"] == 2


def test_colour_composites_use_the_right_bands() -> None:
    from landcover.viz import best_and_worst, false_colour, true_colour

    image = np.zeros((4, 8, 8), dtype=np.uint16)
    for band in range(4):
        image[band, :, band * 2 :] = 1000  # each band bright on a different part
    rgb, nir = true_colour(image), false_colour(image)
    assert rgb.shape == (8, 8, 3) and 0 <= rgb.min() and rgb.max() <= 1
    np.testing.assert_allclose(rgb[..., 0], true_colour(image[[2, 2, 2, 2]])[..., 0])
    np.testing.assert_allclose(nir[..., 0], true_colour(image[[3, 3, 3, 3]])[..., 0])
    best, worst = best_and_worst(np.array([10, 11, 12, 13]), np.array([0.3, 0.1, 0.4, 0.2]), k=2)
    assert best.tolist() == [11, 13] and worst.tolist() == [12, 10]
