"""Self-training of the LightGBM member on the test region, measured by playing "test" with
held-out patches (issue 44 item 7). One-off measurement, not part of the package.

For each fold k, the saved fold booster labels the pixels of the patches it never saw (the
"test region": the whole held-out fold for the in-region column; the fold's patches drawn to a
class-mix region's mix, each pixel weighted by its patch's draw count, for the class-mix
columns). Pixels whose top probability reaches TAU become pseudo-labels; the booster goes on
for ROUNDS more rounds on its own training pixels plus the pseudo-labelled ones (weight W
relative to a training pixel), then predicts the same patches again (in the member's own
mode: soft for the LightGBM member). Scored: KL of the held-out patches, and the count-weighted
KL of each region, against the fold booster as saved (same features, same stride).

    python src/benchmarks/self_training.py SIDECAR [--tau 0.7] [--rounds 40] [--weight 1.0]
        [--every-region 4]   (--tau 1.01: the control, the same rounds without pseudo-labels)
"""

from __future__ import annotations

import argparse
import json
import time

import lightgbm as lgb
import numpy as np

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.classmix import mix_table, regions_from_table
from landcover.constants import N_CLASSES
from landcover.fold_plan import plan_for
from landcover.members.gbm_features import FeatureSpec, pixel_features
from landcover.members.gbm_fit import booster_params, fold_pixels
from landcover.metric import kl_per_sample, scored_proportions
from landcover.predictor import Predictor
from landcover.radiometry import FoldRadiometry
from landcover.submission import load_submitted

p = argparse.ArgumentParser()
p.add_argument("sidecar")
p.add_argument("--tau", type=float, default=0.7)
p.add_argument("--rounds", type=int, default=40)
p.add_argument("--weight", type=float, default=1.0)
p.add_argument("--per-patch", type=int, default=256)
p.add_argument("--every-region", type=int, default=4)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--train-share", type=float, default=0.34, help="training pixels kept")
p.add_argument("--json")
args = p.parse_args()

predictor = Predictor.load(args.sidecar, device="cpu", every_member=True)
member = next(m for m in predictor.members if m.config["model"]["kind"] == "pixel_gbm")
cfg = member.config
gcfg, spec = cfg["gbm"], FeatureSpec.from_config(cfg["gbm"])
stride = 8  # as the shift tests read the LightGBM member
data = prepare_data(member.meta["data_dir"])
folds = load_experiment(member.path).oof.select(data.train_ids).folds
plan = plan_for(data, cfg["data"])
labels = data.labels
sub = load_submitted(predictor.source)
width = int(member.meta["fold_scheme"]["row_width"])
regions = regions_from_table(
    mix_table(sub.inputs.labels_path), scored_proportions(labels), width, every=args.every_region
)
rng = np.random.default_rng(0)


def proportions(bag, feats: np.ndarray) -> np.ndarray:
    booster, classes = bag
    n, h, w, f = feats.shape
    probs = np.zeros((n * h * w, N_CLASSES))
    probs[:, classes] = booster.predict(feats.reshape(-1, f), num_threads=args.threads)
    return probs.reshape(n, h * w, N_CLASSES)


def hard(probs: np.ndarray) -> np.ndarray:
    """The member's proportions: argmax counts under ``predict.mode: hard``, else the mean."""
    if cfg["predict"]["mode"] == "hard":
        return np.eye(N_CLASSES)[probs.argmax(-1)].mean(axis=1)
    return probs.mean(axis=1)


def continued(bag, x_train, y_train, feats, probs, counts) -> tuple:
    """The fold booster continued on its training pixels and the pseudo-labelled ones."""
    booster, classes = bag
    top, label = probs.max(-1), probs.argmax(-1)
    xs, ys, ws = [x_train], [np.searchsorted(classes, y_train)], [np.ones(len(y_train))]
    for i in np.flatnonzero(counts):
        keep = np.flatnonzero(top[i] >= args.tau)
        keep = rng.permutation(keep)[: args.per_patch]
        xs.append(feats[i].reshape(-1, feats.shape[-1])[keep])
        ys.append(np.searchsorted(classes, label[i, keep]))
        ws.append(np.full(len(keep), args.weight * counts[i]))
    x, y, w = np.concatenate(xs), np.concatenate(ys), np.concatenate(ws)
    params = booster_params(gcfg, len(classes), cfg["seed"], args.threads)
    names = list(spec.names)
    more = lgb.train(
        params,
        lgb.Dataset(x, y, weight=w, feature_name=names, free_raw_data=False),
        num_boost_round=args.rounds,
        init_model=booster,
        keep_training_booster=True,
    )
    return more, classes


started = time.time()
base = np.zeros((len(labels), N_CLASSES))
self_fold = np.zeros_like(base)  # whole held-out fold as the test region
region_base = np.zeros(len(regions))
region_self = np.zeros(len(regions))
per_row_base = None
for k in np.unique(folds):
    val = np.flatnonzero(folds == k)
    train_rows = plan.train_rows(k)
    model = member.folds[k]
    bag = model.bags[0]
    images = FoldRadiometry.of_fold(data.train_images, train_rows, True).prepared(
        data.train_images, val
    )
    feats = pixel_features(images, stride, spec)
    (x_train, y_train), _ = fold_pixels(
        cfg, data.train_images, data.train_masks, train_rows, val, args.threads
    )
    keep = rng.random(len(y_train)) < args.train_share
    x_train, y_train = x_train[keep], y_train[keep]
    probs = proportions(bag, feats)
    base[val] = hard(probs)
    st = continued(bag, x_train, y_train, feats, probs, np.ones(len(val)))
    self_fold[val] = hard(proportions(st, feats))
    print(
        f"fold {k}: held-out KL {kl_per_sample(labels[val], base[val]).mean():.5f} -> "
        f"{kl_per_sample(labels[val], self_fold[val]).mean():.5f} "
        f"({time.time() - started:.0f} s)",
        flush=True,
    )
    for j, region in enumerate(regions):
        counts = region.counts[val]
        if not counts.any():
            continue
        st = continued(bag, x_train, y_train, feats, probs, counts)
        drawn = np.flatnonzero(counts)
        pred = hard(proportions(st, feats[drawn]))
        rows = val[drawn]
        region_base[j] += counts[drawn] @ kl_per_sample(labels[rows], base[rows])
        region_self[j] += counts[drawn] @ kl_per_sample(labels[rows], pred)
    print(f"fold {k}: {len(regions)} regions done ({time.time() - started:.0f} s)", flush=True)

totals = np.array([r.counts.sum() for r in regions])
region_base /= totals
region_self /= totals
k10 = max(1, int(np.ceil(0.1 * len(regions))))


def worst(x):
    return np.sort(x)[-k10:].mean()


out = {
    "settings": vars(args),
    "held_out": [kl_per_sample(labels, base).mean(), kl_per_sample(labels, self_fold).mean()],
    "regions": [region_base.mean(), region_self.mean()],
    "worst_decile": [worst(region_base), worst(region_self)],
    "per_region": {
        r.name: [a, b] for r, a, b in zip(regions, region_base, region_self, strict=True)
    },
    "seconds": time.time() - started,
}
print(json.dumps({k: v for k, v in out.items() if k != "per_region"}, indent=1, default=float))
if args.json:
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1, default=float)
