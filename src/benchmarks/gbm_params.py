"""LightGBM settings side by side: each variant of a trained pixel_gbm experiment's ``gbm``
settings refitted on every fold's own training pixels (the same draws, copies and dark-level
correction as the experiment's fit), and scored on the fold's validation patches prepared as
its predictions were (``predict.dark_level``, ``predict.align``), from every ``stride``-th pixel.

    python src/benchmarks/gbm_params.py oof/pixel_lightgbm_shifted \\
        --variant "strong min_data_in_leaf=500 feature_fraction=0.5 lambda_l2=10" \\
        --variant "fast learning_rate=0.12 n_estimators=100" [--stride 8] [--json out.json]

With the experiment's threads and stride, ``trained`` is its OOF to the last digit. A variant
is a name and ``gbm`` keys (``learning_rate``, ``num_leaves``, ``min_data_in_leaf``,
``feature_fraction``, ``lambda_l2``, ``n_estimators``); the experiment's own settings run first
as ``trained``. A member of ``gbm.bags`` N refits N boosters a fold and variant, each on its
bag's draws and seed, and predicts their mean. The variants share each fold's pixels, seed and
threads, so their differences are the settings' alone (a paired comparison; another seed moves
the member by ~4%). Settings that change the pixels (``pixels_per_image``, copies, features)
need a training run of their own (``src/train.py --set``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.experiment import fold_seed
from landcover.fold_plan import plan_for
from landcover.fold_predict import fold_radiometry
from landcover.members.gbm_features import FeatureSpec, cores
from landcover.members.pixel_gbm import (
    bag_seeds,
    booster_params,
    fold_pixels,
    predict_proportions,
)
from landcover.metric import kl_divergence

TUNABLE = {
    "learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "lambda_l2",
    "n_estimators",
}  # fmt: skip


def parse_variant(text: str) -> tuple[str, dict]:
    """``"name key=value ..."`` -> (name, settings); a key outside ``TUNABLE`` is refused."""
    name, *pairs = text.split()
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in TUNABLE:
            raise SystemExit(f"--variant {name}: '{pair}' is not one of {sorted(TUNABLE)}=VALUE")
        settings[key] = yaml.safe_load(value)
    return name, settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("experiment", help="a complete pixel_gbm experiment directory")
    parser.add_argument("--variant", action="append", default=[], help="NAME KEY=VALUE ...")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=0, help="0: the experiment's own (its fit's cores)"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    exp = load_experiment(args.experiment)
    config = exp.config
    if config["model"]["kind"] != "pixel_gbm":
        raise SystemExit(f"{args.experiment}: not a pixel_gbm experiment")
    variants = dict([("trained", {}), *map(parse_variant, args.variant)])
    data = prepare_data(exp.meta["data_dir"])
    plan = plan_for(data, config["data"])
    width, hard = plan.scheme.get("row_width"), config["predict"]["mode"] == "hard"
    images, ids, labels = data.train_images, data.train_ids, data.labels
    folds = exp.oof.select(ids).folds
    spec = FeatureSpec.from_config(config["gbm"])
    threads = args.threads or config["run"]["threads"] or cores()
    oof = {name: np.zeros_like(labels) for name in variants}
    fit_s = dict.fromkeys(variants, 0.0)
    n_bags = int(config["gbm"].get("bags", 1))
    for fold in np.unique(folds):
        train_rows, val_rows = plan.train_rows(fold), np.flatnonzero(folds == fold)
        seeds = [bag_seeds(config, fold_seed(config, fold), k) for k in range(n_bags)]
        draws = [  # each bag's pixels, drawn as the member drew them (pixel_gbm.fit_fold)
            fold_pixels(config, images, data.train_masks, train_rows, val_rows, threads, draw)[0]
            for draw, _ in seeds
        ]
        radiometry = fold_radiometry(config, data, plan, fold)
        val = (
            radiometry.regions_prepared(images, ids[val_rows], width, val_rows)
            if radiometry.changes
            else images[val_rows]
        )
        for name, settings in variants.items():
            gcfg = {**config["gbm"], **settings}
            bags = []
            started = time.perf_counter()
            for (x, y), (_, seed) in zip(draws, seeds, strict=True):
                classes = np.unique(y)
                params = booster_params(gcfg, len(classes), seed, threads)
                train_set = lgb.Dataset(
                    x, np.searchsorted(classes, y), feature_name=list(spec.names)
                )
                booster = lgb.train(params, train_set, num_boost_round=gcfg["n_estimators"])
                bags.append((booster, classes))
            fit_s[name] += time.perf_counter() - started
            oof[name][val_rows] = predict_proportions(
                bags, val, np.arange(len(val_rows)), args.stride, threads=threads, spec=spec,
                hard=hard,
            )  # fmt: skip
            kl = kl_divergence(labels[val_rows], oof[name][val_rows])
            print(f"fold {fold} {name:12s} {kl:.5f}", flush=True)
    results = {
        name: {
            "settings": settings,
            "oof_kl": kl_divergence(labels, oof[name]),
            "fit_s": round(fit_s[name], 1),
        }
        for name, settings in variants.items()
    }
    print(f"\n{'variant':12s} {'OOF KL':>8s} {'fit s':>7s}  settings")
    for name, row in results.items():
        print(f"{name:12s} {row['oof_kl']:8.5f} {row['fit_s']:7.1f}  {row['settings']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
