import re

import pytest

from landcover.config import (
    CONFIG_DIR,
    config_differences,
    config_hash,
    load_config,
    load_profile,
    parse_overrides,
)
from landcover.errors import ConfigError

PROFILES = sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_experiment_resolves(profile: str):
    experiments = load_profile(profile)["experiments"]
    assert experiments
    for name in experiments:
        config = load_config(name, profile=profile)
        assert config["experiment"] == name


def test_the_benchmark_recipe_is_in_the_demo_and_one_flag_away_on_the_sample():
    """The default run scores the official recipe (the blend's "vs benchmark" ratios);
    sample-cpu leaves it out to fit the hour and keeps its settings for --experiments."""
    assert "benchmark_unet" in load_profile("demo")["experiments"]
    assert "benchmark_unet" not in load_profile("sample-cpu")["experiments"]
    config = load_config("benchmark_unet", profile="sample-cpu")
    assert config["train"]["crop"] == 64 and config["train"]["epochs"] == 16


def test_the_gpu_and_sample_profiles_train_every_member_for_new_ground():
    """full-gpu, sample-cpu and sample-gpu: each network sees the shift test's changes on half
    its patches and the LightGBM member trains on changed copies; the official recipe stays as
    the organisers trained it (the yardstick), and the in-region members stay one
    --experiments flag away."""
    for profile in ("full-gpu", "sample-cpu", "sample-gpu"):
        for name in load_profile(profile)["experiments"]:
            config = load_config(name, profile=profile, overrides={"run": {"device": "cpu"}})
            if config["model"]["kind"] == "pixel_gbm":
                # two copies a patch where they were measured (README, "Two changed copies a
                # patch"); the GPU profiles keep one
                copies = 2 if profile == "sample-cpu" else 1
                assert config["gbm"]["shifted_copies"] == copies, (profile, name)
            elif name == "benchmark_unet":
                assert config["augment"]["shift"] == 0.0
            else:
                assert config["augment"]["shift"] == 0.5, (profile, name)
                # 3x the learning rate where it was measured, for its 16 short epochs (README, "A
                # faster learning rate, the network"); the GPU profiles train longer at 1e-3
                lr = 3e-3 if profile == "sample-cpu" else 1e-3
                assert config["train"]["lr"] == lr, (profile, name)
                # relative inputs where they were measured (README, "Relative inputs, the
                # network"); full-gpu loads 4-band SSL4EO weights, which they would not fit
                relative = profile == "sample-cpu"
                assert config["normalize"]["relative"] == relative, (profile, name)
                # rare classes weighted up, a quarter of it taken back at prediction, where it
                # was measured (README, "Rare classes weigh more, the network")
                weights = "sqrt_inverse_frequency" if profile == "sample-cpu" else "none"
                assert config["loss"]["class_weights"] == weights, (profile, name)
                assert config["predict"]["class_adjust"] == (0.25 if relative else 0.0)
    in_region = load_config(
        "pixel_lightgbm", profile="full-gpu", overrides={"run": {"device": "cpu"}}
    )
    assert in_region["gbm"]["shifted_copies"] == 0
    assert in_region["gbm"]["predict_stride"] == 6  # as fast as the default member
    for profile in ("sample-cpu", "sample-gpu", "full-gpu", "demo"):  # no region alignment:
        for name in load_profile(profile)["experiments"]:  # it assumes the training region's mix
            config = load_config(name, profile=profile, overrides={"run": {"device": "cpu"}})
            assert config["predict"]["align"] is False, (profile, name)
    for name in load_profile("sample-cpu")["experiments"]:  # then each patch's dark level
        assert load_config(name, profile="sample-cpu")["predict"]["dark_level"] is True, name
    # sample-gpu: the sample-cpu members, the network trained to convergence on whole patches
    assert load_profile("sample-gpu")["experiments"] == load_profile("sample-cpu")["experiments"]
    assert load_profile("sample-gpu")["overrides"]["run"]["device"] == "cuda"
    network = load_config(
        "unet_regnety_002_shifted", profile="sample-gpu", overrides={"run": {"device": "cpu"}}
    )
    assert network["train"]["epochs"] == 60 and network["train"]["crop"] == 0  # whole patches


def test_the_profile_map_defaults_and_is_checked(tmp_path):
    """run_all.sh maps the mosaic the profile names (train.py --check's 4th line)."""
    assert load_profile("demo")["map"] == {"rows": 3, "cols": 3, "overlap": 64}
    assert load_profile("sample-cpu")["map"] == {"rows": 2, "cols": 2, "overlap": 0}
    assert load_profile(None)["map"] == {"rows": 3, "cols": 3, "overlap": 64}
    from train import check_experiments

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
        ("nonsense", "expected key.path=value"),
    ],
)
def test_bad_overrides(override: str, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("unet_resnet18", overrides=[override])


def test_bad_shifted_kinds():
    with pytest.raises(ConfigError, match=re.escape("'gbm.shifted_kinds' must be some of")):
        load_config("pixel_lightgbm_shifted", overrides=["gbm.shifted_kinds=[gain,none]"])
    assert load_config("pixel_lightgbm_shifted")["gbm"]["shifted_kinds"] == [
        "gain", "gain", "offset", "haze",
    ]  # fmt: skip  # half the copies a gain: the member's worst change once the dark level is on
    config = load_config("pixel_lightgbm_shifted", overrides=["gbm.shifted_kinds=[gain,season]"])
    assert config["gbm"]["shifted_kinds"] == ["gain", "season"]


def test_corrected_training_needs_the_dark_level():
    """Training pixels corrected as predicted ones are: only where predictions are."""
    message = "'gbm.corrected_training' trains on pixels dark-level corrected as predicted"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("pixel_lightgbm_shifted", overrides=["gbm.corrected_training=true"])
    on = ["gbm.corrected_training=true", "predict.dark_level=true"]
    assert load_config("pixel_lightgbm_shifted", overrides=on)["gbm"]["corrected_training"]
    for profile in ("sample-cpu", "sample-gpu"):  # README, "Trained as predicted"
        config = load_config("pixel_lightgbm_shifted", profile=profile)
        assert config["gbm"]["corrected_training"] and config["predict"]["dark_level"]
    # the networks' counterpart: crops dark-level corrected after their changes
    message = "'train.corrected_training' trains on crops dark-level corrected as predicted"
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("unet_regnety_002_shifted", overrides=["train.corrected_training=true"])
    on = ["train.corrected_training=true", "predict.dark_level=true"]
    assert load_config("unet_regnety_002_shifted", overrides=on)["train"]["corrected_training"]
    for profile in ("sample-cpu", "sample-gpu"):
        config = load_config("unet_regnety_002_shifted", profile=profile)
        assert config["train"]["corrected_training"] and config["predict"]["dark_level"]


def test_the_networks_later_switch_off_leaves_their_hashes():
    """``train.corrected_training`` and ``normalize.dark_relative`` came later: off, a
    network's config that lacks them hashes as before (its fold models are not retrained); on,
    its training hash moves."""
    from landcover.config import LATER_SWITCHES, training_hash

    assert LATER_SWITCHES["train"] == {"corrected_training": False}
    config = load_config("unet_regnety_002_shifted", profile="demo")
    assert config["train"]["corrected_training"] is False
    before = dict(
        config, train={k: v for k, v in config["train"].items() if k != "corrected_training"}
    )
    assert training_hash(config) == training_hash(before)
    assert config_hash(config) == config_hash(before)
    on = ["train.corrected_training=true", "predict.dark_level=true"]
    dark = load_config("unet_regnety_002_shifted", profile="demo", overrides=on[1:])
    corrected = load_config("unet_regnety_002_shifted", profile="demo", overrides=on)
    assert training_hash(corrected) != training_hash(dark)
    # normalize.dark_relative likewise (sample-cpu's network has relative inputs)
    assert LATER_SWITCHES["normalize"] == {"relative": False, "dark_relative": False}
    config = load_config("unet_regnety_002_shifted", profile="sample-cpu")
    assert config["normalize"]["dark_relative"] is False
    before = dict(
        config,
        normalize={k: v for k, v in config["normalize"].items() if k != "dark_relative"},
    )
    assert training_hash(config) == training_hash(before)
    on = ["normalize.dark_relative=true"]
    dark = load_config("unet_regnety_002_shifted", profile="sample-cpu", overrides=on)
    assert training_hash(dark) != training_hash(config)


def test_bad_model_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encoderr: tu-resnet18\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'model.encoderr'"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="unknown profile"):
        load_config("unet_resnet18", profile="nope")


def test_hash_ignores_where_it_runs():
    a = load_config("unet_resnet18", overrides=["run.device=cpu"])
    b = load_config("unet_resnet18", overrides=["run.device=cuda", "run.threads=4"])
    c = load_config("unet_resnet18", overrides=["train.epochs=2"])
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_differences_ignore_new_settings_at_their_default_and_where_it_runs():
    trained = load_config("unet_resnet18", overrides=["run.device=cpu"])
    del trained["train"]["val_crop"]  # a setting added to the base after this was trained
    current = load_config("unet_resnet18", overrides=["run.device=cuda"])
    assert config_differences(trained, current) == []
    changed = load_config("unet_resnet18", overrides=["train.lr=0.01", "model.arch=FPN"])
    assert config_differences(trained, changed) == ["model.arch", "train.lr"]
    del trained["predict"]["align"]  # added later too: counts once set otherwise than its default
    aligned = load_config("unet_resnet18", overrides=["predict.align=true"])
    assert config_differences(trained, aligned) == ["predict.align"]
    assert config_differences(trained, current) == []


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize(
    "profile", sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))
)
def test_what_a_model_file_fixes_survives_every_profile(profile: str):
    """The official recipe stays the yardstick: under any profile, every setting a model file
    makes (benchmark_unet: argmax counts, one view, no jitter...) is what the experiment gets,
    unless the profile names that experiment in experiment_overrides."""
    from landcover.config import load_profile, read_yaml

    named = load_profile(profile)["experiment_overrides"]
    for path in sorted((CONFIG_DIR / "models").glob("*.yaml")):
        config = _leaves(
            load_config(path.stem, profile=profile, overrides={"run": {"device": "cpu"}})
        )
        exempt = _leaves(named.get(path.stem) or {})
        for key, value in _leaves(read_yaml(path)).items():
            if key not in exempt:
                assert config[key] == value, (profile, path.stem, key)
    bench = load_config("benchmark_unet", profile=profile, overrides={"run": {"device": "cpu"}})
    assert bench["predict"] == {**bench["predict"], "mode": "hard", "tta": 1}


def test_a_later_switch_off_leaves_the_hashes_of_configs_made_before_it():
    """``gbm.relative``, ``gbm.relative_context``, ``gbm.dark_relative``, ``gbm.feature_fraction``,
    ``gbm.min_data_in_leaf``, ``gbm.lambda_l2``, ``gbm.corrected_training`` and ``gbm.bags``
    came later: at
    their off value (the value LightGBM was given before the key existed), a config that lacks
    them hashes as before (its fold models are not retrained); at another value, the training
    hash moves."""
    from landcover.config import LATER_SWITCHES, training_hash

    off = ["gbm.corrected_training=false"]  # sample-cpu turns it on (pairs it with the dark level)
    config = load_config("pixel_lightgbm", profile="sample-cpu", overrides=off)
    later = LATER_SWITCHES["gbm"]
    assert set(later) == {
        "relative",
        "relative_context",
        "dark_relative",
        "feature_fraction",
        "min_data_in_leaf",
        "lambda_l2",
        "corrected_training",
        "bags",
    }
    assert {key: config["gbm"][key] for key in later} == later
    before = dict(config, gbm={k: v for k, v in config["gbm"].items() if k not in later})
    assert training_hash(config) == training_hash(before)
    assert config_hash(config) == config_hash(before)
    other = {
        "relative": True,
        "relative_context": True,
        "dark_relative": True,
        "feature_fraction": 0.5,
        "min_data_in_leaf": 20,
        "lambda_l2": 10.0,
        "corrected_training": True,
        "bags": 2,
    }
    for key, value in other.items():
        on = load_config(
            "pixel_lightgbm", profile="sample-cpu", overrides=[*off, f"gbm.{key}={value}"]
        )
        assert training_hash(on) != training_hash(config)
    # the member trained for new ground has them (README, "Quality on new ground")
    shifted = load_config("pixel_lightgbm_shifted", profile="sample-cpu")["gbm"]
    relative = ("relative", "relative_context", "dark_relative")
    assert [shifted[key] for key in relative] == [True, True, True]
    # and is regularised for ground it never saw (README, "Regularised for new ground")
    regularised = ("min_data_in_leaf", "feature_fraction", "lambda_l2", "learning_rate")
    assert [shifted[key] for key in regularised] == [500, 0.5, 10.0, 0.12]
