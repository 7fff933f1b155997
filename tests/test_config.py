"""Configs: base + model file + profile (scale only) + overrides, typed and checked; what a
model file fixes survives every profile; what makes a trained experiment stale."""

import re

import pytest

from landcover.commands.train import check_experiments
from landcover.config import CONFIG_DIR, load_config, parse_overrides, read_yaml
from landcover.errors import ConfigError
from landcover.freshness import config_differences, config_hash, prediction_hash, training_hash
from landcover.profiles import SCALE_KEYS, learning_keys, load_profile

PROFILES = sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))
CPU = {"run": {"device": "cpu"}}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_experiment_resolves(profile: str):
    experiments = load_profile(profile)["experiments"]
    assert experiments
    for name in experiments:
        config = load_config(name, profile=profile, overrides=CPU)
        assert config["experiment"] == name


@pytest.mark.parametrize("profile", PROFILES)
def test_no_profile_changes_what_a_model_learns(profile: str):
    """A profile's overrides touch only scale and hardware (``SCALE_KEYS``): read from the
    file itself, every key of ``overrides`` and ``experiment_overrides``."""
    data = read_yaml(CONFIG_DIR / "profiles" / f"{profile}.yaml")
    for given in [data.get("overrides") or {}, *(data.get("experiment_overrides") or {}).values()]:
        assert learning_keys(given) == [], (profile, given)


def test_a_profile_that_sets_a_learning_key_is_refused(tmp_path):
    assert learning_keys({"train": {"lr": 0.1, "epochs": 3}, "run": {"threads": 2}}) == ["train.lr"]
    assert learning_keys({"loss": {"kl_weight": 0.0}}) == ["loss.kl_weight"]
    assert set(SCALE_KEYS["train"]) >= {"epochs", "batch_size", "crop"}
    path = tmp_path / "p.yaml"
    path.write_text(
        "experiments: [unet_resnet18]\noverrides:\n  augment: {radiometric_shift: 0.5}\n"
    )
    with pytest.raises(ConfigError, match=re.escape("sets augment.radiometric_shift: a profile")):
        load_profile(str(path))
    own = "experiment_overrides:\n  unet_resnet18: {predict: {mode: hard}}\n"
    path.write_text(f"experiments: [unet_resnet18]\n{own}")
    with pytest.raises(ConfigError, match=re.escape("unet_resnet18 sets predict.mode")):
        load_profile(str(path))


def test_the_sample_and_gpu_profiles_run_the_new_ground_members_at_their_own_scale():
    """sample-cpu, sample-gpu and full-gpu train the same recipes (their model files), on
    128-pixel crops for 16 epochs on the CPU, whole patches on a GPU."""
    members = load_profile("sample-cpu")["experiments"]
    assert all(name.endswith("_newground") for name in members)
    for profile in ("sample-gpu", "full-gpu"):
        assert load_profile(profile)["experiments"] == members
    cpu = load_config("unet_efficientnet_b0_newground", profile="sample-cpu")
    gpu = load_config("unet_efficientnet_b0_newground", profile="sample-gpu", overrides=CPU)
    assert (cpu["train"]["crop"], cpu["train"]["epochs"]) == (128, 16)
    assert (gpu["train"]["crop"], gpu["train"]["epochs"]) == (0, 60)
    for section in ("model", "normalize", "loss", "augment"):
        assert cpu[section] == gpu[section], section
    assert training_hash(cpu) != training_hash(gpu)  # the scale is part of its identity


def test_the_new_ground_recipes():
    """What the model files say the members trained for new ground do (docs/new-ground.md)."""
    for name in ("unet_regnety_002_newground", "unet_efficientnet_b0_newground"):
        net = load_config(name)
        assert net["normalize"]["patch_relative"] and net["augment"]["radiometric_shift"] == 0.5
        assert net["loss"]["class_weights"] == "sqrt_inverse_frequency"
        assert net["predict"]["logit_adjustment"] == 0.25 and net["predict"]["mode"] == "hard"
        assert net["train"]["dark_corrected"] and net["predict"]["dark_level"]
    gbm = load_config("pixel_lightgbm_newground")
    features = ("patch_relative", "patch_relative_context", "above_dark_level")
    assert [gbm["gbm"][key] for key in features] == [True, True, True]
    assert gbm["gbm"]["radiometric_copies"] == 2 and gbm["predict"]["mode"] == "soft"
    regularised = ("min_data_in_leaf", "feature_fraction", "lambda_l2", "learning_rate")
    assert [gbm["gbm"][key] for key in regularised] == [500, 0.5, 10.0, 0.12]


def test_the_benchmark_recipe_is_in_the_demo_and_one_flag_away_on_the_sample():
    assert "benchmark_unet" in load_profile("demo")["experiments"]
    assert "benchmark_unet" not in load_profile("sample-cpu")["experiments"]
    config = load_config("benchmark_unet", profile="sample-cpu")
    assert config["train"]["epochs"] == 16 and config["predict"]["mode"] == "hard"


def test_the_profile_map_and_shift_test_settings_default_and_are_checked(tmp_path):
    """run_all.sh maps the mosaic the profile names (train.py --check's 4th line) and runs the
    shift tests with its shift_test settings."""
    assert load_profile("demo")["map"] == {"rows": 3, "cols": 3, "overlap": 64}
    assert load_profile("sample-cpu")["map"] == {"rows": 2, "cols": 2, "overlap": 0}
    assert load_profile(None)["map"] == {"rows": 3, "cols": 3, "overlap": 64}
    assert load_profile("demo")["shift_test"]["band_rows"] == 2
    assert load_profile("sample-cpu")["shift_test"]["band_rows"] == 10
    assert check_experiments("pixel_lightgbm", "sample-cpu", [], smoke=False).split("\n") == [
        "pixel_lightgbm",
        "pixel_lightgbm",
        "cpu",
        "2 2 0",
    ]
    smoke = check_experiments("pixel_lightgbm", "demo", [], smoke=True).split("\n")
    assert smoke[3] == "2 2 64"  # the notebook's smoke mosaic: the stage's label agrees
    for bad, message in [
        ("map: {rows: 0}", "map.rows must be an integer >= 1"),
        ("map: {overlap: -1}", "map.overlap must be an integer >= 0"),
        ("map: {cols: 2.5}", "map.cols must be an integer >= 1"),
        ("map: {size: 3}", "unknown key(s) under map"),
        ("shift_test: {band_rows: 0}", "shift_test.band_rows must be an integer >= 1"),
        ("shift_test: {views: 2}", "unknown key(s) under shift_test"),
    ]:
        path = tmp_path / "p.yaml"
        path.write_text(f"experiments: [pixel_lightgbm]\n{bad}\n")
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_profile(str(path))


def test_overrides_are_typed():
    config = load_config(
        "unet_resnet18", overrides=["train.epochs=3", "train.lr=0.01", "model.arch=FPN"]
    )
    assert config["train"]["epochs"] == 3 and config["train"]["lr"] == 0.01
    assert config["model"]["arch"] == "FPN"
    assert parse_overrides(["a.b=1", "a.c=x"]) == {"a": {"b": 1, "c": "x"}}


def test_an_exponent_without_a_dot_is_a_float():
    """YAML 1.1 reads ``3e-3`` as a string; a float setting takes it as the number it means."""
    config = load_config("unet_resnet18", overrides=["train.lr=3e-3", "train.weight_decay=1E-5"])
    assert config["train"]["lr"] == 0.003 and config["train"]["weight_decay"] == 1e-5
    with pytest.raises(ConfigError, match=re.escape("'train.lr' must be float, got str '3e'")):
        load_config("unet_resnet18", overrides=["train.lr=3e"])
    assert load_config("unet_resnet18", overrides=["model.arch=3e-3"])["model"]["arch"] == "3e-3"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", "unknown key 'train.epoch' (did you mean 'epochs'?)"),
        ("train.epochs=three", "'train.epochs' must be int, got str 'three'"),
        ("train.lr=fast", "'train.lr' must be float"),
        ("augment.d4=1", "'augment.d4' must be bool"),
        ("train=3", "'train' must be a mapping"),
        ("predict.tta=3", "'predict.tta' must be 1, 2, 4 or 8"),
        ("model.kind=transformer", "'model.kind' must be one of"),
        ("loss.class_weights=cube_root", "'loss.class_weights' must be one of"),
        ("predict.align=true", "unknown key 'predict.align'"),
        ("nonsense", "expected key.path=value"),
    ],
)
def test_bad_overrides(override: str, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("unet_resnet18", overrides=[override])


def test_bad_radiometric_kinds():
    with pytest.raises(ConfigError, match=re.escape("'gbm.radiometric_kinds' must be some of")):
        load_config("pixel_lightgbm_newground", overrides=["gbm.radiometric_kinds=[gain,none]"])
    config = load_config(
        "pixel_lightgbm_newground", overrides=["gbm.radiometric_kinds=[gain,season]"]
    )
    assert config["gbm"]["radiometric_kinds"] == ["gain", "season"]


@pytest.mark.parametrize("name", ["pixel_lightgbm", "unet_regnety_002"])
def test_dark_corrected_training_needs_the_dark_level(name: str):
    with pytest.raises(ConfigError, match=re.escape("'train.dark_corrected' trains on")):
        load_config(name, overrides=["train.dark_corrected=true"])
    on = ["train.dark_corrected=true", "predict.dark_level=true"]
    assert load_config(name, overrides=on)["train"]["dark_corrected"]


def test_bad_model_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encoderr: tu-resnet18\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'model.encoderr'"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("unet_resnet18", profile="nope")


def test_hashes_ignore_where_it_runs_and_split_training_from_prediction():
    a = load_config("unet_resnet18", overrides=["run.device=cpu"])
    b = load_config("unet_resnet18", overrides=["run.device=cuda", "run.threads=4"])
    c = load_config("unet_resnet18", overrides=["train.epochs=2"])
    d = load_config("unet_resnet18", overrides=["predict.tta=2"])
    assert config_hash(a) == config_hash(b) != config_hash(c)
    assert training_hash(a) == training_hash(d) and prediction_hash(a) != prediction_hash(d)
    assert prediction_hash(a) == prediction_hash(c) and training_hash(a) != training_hash(c)


def test_differences_ignore_new_settings_at_their_default_and_where_it_runs():
    trained = load_config("unet_resnet18", overrides=["run.device=cpu"])
    del trained["train"]["val_crop"]  # a setting added to the base after this was trained
    current = load_config("unet_resnet18", overrides=["run.device=cuda"])
    assert config_differences(trained, current) == []
    changed = load_config("unet_resnet18", overrides=["train.lr=0.01", "model.arch=FPN"])
    assert config_differences(trained, changed) == ["model.arch", "train.lr"]
    cropped = load_config("unet_resnet18", overrides=["train.val_crop=32"])
    assert config_differences(trained, cropped) == ["train.val_crop"]


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_what_a_model_file_fixes_survives_every_profile(profile: str):
    """Under any profile, every setting a model file makes (benchmark_unet: argmax counts, one
    view, no jitter...) is what the experiment gets, unless the profile names that experiment
    in experiment_overrides (scale only)."""
    named = load_profile(profile)["experiment_overrides"]
    for path in sorted((CONFIG_DIR / "models").glob("*.yaml")):
        config = _leaves(load_config(path.stem, profile=profile, overrides=CPU))
        exempt = _leaves(named.get(path.stem) or {})
        for key, value in _leaves(read_yaml(path)).items():
            if key not in exempt:
                assert config[key] == value, (profile, path.stem, key)
    bench = load_config("benchmark_unet", profile=profile, overrides=CPU)
    assert bench["predict"] == {**bench["predict"], "mode": "hard", "tta": 1}


def test_every_base_option_is_used_or_a_tested_switch():
    """Every key of configs/base.yaml at a value other than its default in some model file or
    profile, or a user-facing switch exercised by the tests (listed here with the test file)."""
    switches = {  # key: where a test turns it on
        "experiment": "test_weights.py", "seed": "test_training.py",
        "data.scheme": "test_folds.py", "data.row_width": "test_folds.py",
        "data.band_rows": "test_folds.py", "data.buffer_rows": "test_folds.py",
        "data.group_size": "test_training.py", "data.fold_seed": "test_folds.py",
        "model.pretrained": "test_weights.py", "model.params": "test_engines.py",
        "normalize.scale": "test_weights.py", "normalize.per_image": "test_batches.py",
        "train.ema": "test_training.py", "train.select": "test_training.py",
        "train.early_stopping": "test_training.py", "train.steps_per_epoch": "test_engines.py",
        "train.scheduler": "benchmark_unet", "train.optimizer": "benchmark_unet",
        "train.grad_clip": "benchmark_unet", "train.weight_decay": "benchmark_unet",
        "augment.albumentations": "test_batches.py", "train.warmup_epochs": "test_training.py",
        "augment.haze": "test_batches.py", "augment.gamma": "test_batches.py",
        "augment.season": "test_batches.py", "gbm.max_train_pixels": "test_training.py",
        "gbm.per_image": "test_gbm_features.py", "gbm.bags": "test_training.py",
        "gbm.num_leaves": "test_training.py", "data.n_folds": "test_folds.py",
        "augment.d4": "test_batches.py", "gbm.texture": "test_gbm_features.py",
    }  # fmt: skip
    base = _leaves(read_yaml(CONFIG_DIR / "base.yaml"))
    used = set()
    for path in [*(CONFIG_DIR / "models").glob("*.yaml"), *(CONFIG_DIR / "profiles").glob("*")]:
        data = read_yaml(path)
        trees = [data] if "models" in path.parts else [
            data.get("overrides") or {}, *(data.get("experiment_overrides") or {}).values()
        ]  # fmt: skip
        for tree in trees:
            used |= {k for k, v in _leaves(tree).items() if k in base and v != base[k]}
    tests = CONFIG_DIR.parent / "tests"
    for key in base:
        if key in used or key.startswith("run."):
            continue
        where = switches.get(key)
        assert where, f"{key}: no model file or profile uses it and no test is listed"
        if where.endswith(".py"):
            leaf = key.split(".")[-1]
            assert leaf in (tests / where).read_text(), f"{key}: not in {where}"
