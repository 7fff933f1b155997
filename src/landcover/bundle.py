"""A trained model as one self-contained folder (or .tar) that predicts on any machine.

Layout, every path relative to the bundle's root::

    bundle.json      format and format_version; the blend (members with weight, temperature
                     and fold count, floor, its target, class calibration); the model card's
                     figures; the SHA-256 of every other file
    MODEL_CARD.md    what the model is, what it was trained and validated on, its limits
    members/<name>/config.yaml, meta.json, scores.json
    members/<name>/folds/fold<k>/   the fold's files as training left them (weights or
                     boosters, normaliser, class weights, done.json with its dark_bound...)
    members/<name>/seed<i>/...      instead, for a member averaged over seeds: each run's

Members weighted under ``MIN_WEIGHT`` are left out and the others renormalised
(``model_source.kept_weights``); with none left out the bundle predicts what its source does.
``read_bundle`` gives the same ``ModelSource`` a sidecar does, so ``Predictor.load`` builds
the fold models one way whatever the model came from. A bundle is checked before anything is
loaded: a missing file, a changed one or another format version is refused in one line
naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from .artifacts import read_json, read_yaml_mapping
from .atomic import atomic_dir, atomic_path
from .blend_outputs import calibration_record
from .blend_tuning import MIN_WEIGHT
from .constants import SCORED_CLASSES
from .errors import ArtifactError, DataError
from .model_card import card_facts, render_card
from .model_source import MemberFiles, ModelSource, kept_weights, source_of
from .provenance import provenance
from .submission import calibration_vector

FORMAT = "landcover-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
CARD = "MODEL_CARD.md"
ARCHIVES = (".tar", ".tar.gz", ".tgz")
MEMBER_FILES = ("config.yaml", "meta.json", "scores.json")


def is_archive(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(ARCHIVES)


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """A bundle folder (it has bundle.json) or an archive of one."""
    path = Path(path)
    return (path.is_dir() and (path / MANIFEST).is_file()) or (path.is_file() and is_archive(path))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_bundle(
    model: str | os.PathLike[str], out: str | os.PathLike[str], min_weight: float = MIN_WEIGHT
) -> tuple[Path, ModelSource]:
    """Write the bundle of ``model`` (a sidecar or an experiment) at ``out``, a folder or a
    .tar (.tar.gz) archive, atomically; returns it and what it holds."""
    out = Path(out)
    source = kept_weights(source_of(model, every_member=True), min_weight)
    if is_archive(out):
        stem = out.name.removesuffix(next(s for s in ARCHIVES if out.name.endswith(s)))
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".bundle-", dir=out.parent) as tmp:
            _write(Path(tmp) / stem, source)
            with atomic_path(out) as part, tarfile.open(part, _tar_mode(out)) as tar:
                tar.add(Path(tmp) / stem, arcname=stem)
        return out, source
    if out.exists() and not (out / MANIFEST).is_file():
        raise DataError(f"{out}: exists and is not a bundle; choose a new folder")
    with atomic_dir(out) as tmp:
        _write(tmp, source)
    return out, source


def _tar_mode(out: Path) -> str:
    return "w" if out.name.endswith(".tar") else "w:gz"


def _write(folder: Path, source: ModelSource) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for m in source.members:
        rel = PurePosixPath("members") / m.name
        runs = (
            {rel: m.path} if not m.seeds else {rel / f"seed{i}": p for i, p in enumerate(m.seeds)}
        )
        for where, run in runs.items():
            for name in MEMBER_FILES:
                if (run / name).is_file():
                    _copy(run / name, folder / where / name)
            for k in range(m.n_folds):
                fold = run / "folds" / f"fold{k}"
                if not fold.is_dir():
                    raise ArtifactError(f"{fold}: missing; the experiment has {m.n_folds} folds")
                shutil.copytree(fold, folder / where / "folds" / f"fold{k}")
        members.append(
            {
                "name": m.name,
                "path": str(next(iter(runs))),
                **({"seeds": [str(r) for r in runs]} if m.seeds else {}),
                "weight": m.weight,
                "temperature": m.temperature,
                "n_folds": m.n_folds,
            }
        )
    facts = card_facts(source)
    (folder / CARD).write_text(render_card(facts))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "members": members,
        "left_out": [{"name": m.name, "weight": m.weight} for m in source.left_out],
        "floor": source.floor,
        "prior": dict(zip(SCORED_CLASSES, np.asarray(source.prior).tolist(), strict=True)),
        "class_bias": calibration_record(source.bias),
        "class_power": calibration_record(source.power),
        "card": facts,
        "files": {p.relative_to(folder).as_posix(): sha256(p) for p in files},
        **provenance(),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def _relative(rel: str, where: str) -> PurePosixPath:
    """A path the manifest names, refused unless it stays inside the bundle."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ArtifactError(f"{where}: names {rel!r}, not a path inside the bundle")
    return path


def read_bundle(folder: str | os.PathLike[str], shown: str | None = None) -> ModelSource:
    """The model of a bundle folder, every file checked first; errors name the file as
    ``shown`` (the folder, or the archive it came from) followed by its path inside."""
    folder = Path(folder)
    shown = shown or str(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{shown}: not a bundle (no {MANIFEST})")
    manifest = read_json(manifest_path)
    where = f"{shown}/{MANIFEST}"
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{where}: not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: bundle format {version}, this code reads {FORMAT_VERSION}; export the "
            "model again with this code (src/export.py)"
        )
    try:
        files = {
            str(_relative(rel, where)): str(digest) for rel, digest in manifest["files"].items()
        }
        for rel, digest in sorted(files.items()):
            path = folder / rel
            if not path.is_file():
                raise ArtifactError(f"{shown}/{rel}: missing from the bundle")
            if sha256(path) != digest:
                raise ArtifactError(
                    f"{shown}/{rel}: checksum mismatch (the file differs from the one exported)"
                )
        members = [_member(folder, entry, files, shown) for entry in manifest["members"]]
        prior = np.array([manifest["prior"][c] for c in SCORED_CLASSES], dtype=np.float64)
        bias = calibration_vector(manifest["class_bias"])
        power = calibration_vector(manifest["class_power"])
        floor = float(manifest["floor"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ArtifactError(f"{where}: damaged ({type(err).__name__}: {err})") from None
    return ModelSource(folder, members, floor, prior, bias, power)


def _member(folder: Path, entry: dict, files: dict[str, str], shown: str) -> MemberFiles:
    rel = _relative(entry["path"], f"{shown}/{MANIFEST}")
    for name in ("config.yaml", "meta.json"):
        if str(rel / name) not in files:
            raise ArtifactError(f"{shown}/{rel / name}: missing from the bundle")
    path = folder / rel
    seeds = tuple(folder / _relative(r, f"{shown}/{MANIFEST}") for r in entry.get("seeds") or [])
    return MemberFiles(
        name=str(entry["name"]),
        path=path,
        config=read_yaml_mapping(path / "config.yaml"),
        meta=read_json(path / "meta.json"),
        weight=float(entry["weight"]),
        temperature=float(entry["temperature"]),
        n_folds=int(entry["n_folds"]),
        seeds=seeds,
    )


@contextlib.contextmanager
def unpacked(archive: str | os.PathLike[str]) -> Iterator[Path]:
    """The bundle folder inside ``archive``, unpacked to a temporary directory removed after
    the block."""
    archive = Path(archive)
    if not archive.is_file():
        raise ArtifactError(f"{archive}: bundle archive not found")
    with tempfile.TemporaryDirectory(prefix="landcover-bundle-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                for item in tar.getmembers():
                    path = PurePosixPath(item.name)
                    if (
                        path.is_absolute()
                        or ".." in path.parts
                        or not (item.isfile() or item.isdir())
                    ):
                        raise ArtifactError(f"{archive}: holds {item.name!r}, not a bundle's file")
                tar.extractall(
                    tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {})
                )
        except (tarfile.TarError, OSError, EOFError) as err:
            raise ArtifactError(f"{archive}: not a readable archive ({err})") from None
        root = Path(tmp)
        if not (root / MANIFEST).is_file():
            inside = [p for p in root.iterdir() if p.is_dir()]
            if len(inside) != 1 or not (inside[0] / MANIFEST).is_file():
                raise ArtifactError(f"{archive}: not a bundle (no {MANIFEST} inside)")
            root = inside[0]
        yield root
