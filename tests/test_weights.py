"""``model.pretrained``: Sentinel-2 (SSL4EO, 13 bands) and user state dicts reach the encoder
with the first convolution cut to B2, B3, B4, B8; downloads that cannot happen, files that do
not fit and settings that contradict the weights stop with one clear line. The state dicts are
written here: no weights are downloaded."""

import json
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from landcover import weights
from landcover.config import load_config
from landcover.errors import ConfigError
from landcover.members import member_for
from landcover.profiles import load_profile

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it


def _resnet18_state(tmp_path: Path, bands: int, name: str = "w.pth") -> tuple[Path, dict]:
    """A timm resnet18 state dict with a ``bands``-band stem and a 1000-class head, as
    torchgeo and timm save them."""
    torch.manual_seed(1)
    state = timm.create_model("resnet18", in_chans=bands, num_classes=1000).state_dict()
    path = tmp_path / name
    torch.save(state, path)
    return path, state


def _encoder(model: torch.nn.Module) -> torch.nn.Module:
    return model.encoder.model if hasattr(model, "encoder") else model


@pytest.mark.parametrize("name", ["unet_resnet18", "classifier_resnet18"])
@pytest.mark.parametrize("bands", [13, 4])
def test_a_state_dict_file_reaches_the_encoder(name: str, bands: int, tmp_path: Path):
    path, state = _resnet18_state(tmp_path, bands)
    config = load_config(name, overrides={"model": {"pretrained": str(path)}})
    encoder = _encoder(member_for(config).build())
    stem = state["conv1.weight"]
    expected = stem[:, [1, 2, 3, 7]] if bands == 13 else stem
    assert weights.S2_BANDS[1:4] + weights.S2_BANDS[7:8] == ("B2", "B3", "B4", "B8")
    torch.testing.assert_close(encoder.conv1.weight, expected, rtol=0, atol=0)
    for key in ("layer4.1.conv2.weight", "bn1.running_var", "layer2.0.downsample.0.weight"):
        torch.testing.assert_close(encoder.state_dict()[key], state[key], rtol=0, atol=0)
    scratch = _encoder(member_for(load_config(name)).build())
    assert not torch.equal(scratch.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_ssl4eo_downloads_once_slices_and_needs_its_scale(tmp_path: Path, monkeypatch):
    _, state = _resnet18_state(tmp_path, 13)
    asked = []

    def hub(url, **kwargs):
        asked.append(url)
        return {k: v.clone() for k, v in state.items() if not k.startswith("fc.")}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", hub)
    ssl4eo = {"model": {"pretrained": "ssl4eo"}, "normalize": {"scale": 10000.0}}
    model = member_for(load_config("unet_resnet18", overrides=ssl4eo)).build()
    assert asked == [weights.SSL4EO_URLS["resnet18"]]
    torch.testing.assert_close(
        model.encoder.model.conv1.weight, state["conv1.weight"][:, [1, 2, 3, 7]]
    )
    with pytest.raises(ConfigError, match=r"normalize\.scale: 10000"):
        load_config("unet_resnet18", overrides={"model": {"pretrained": "ssl4eo"}})
    with pytest.raises(ConfigError, match="resnet18, resnet50 only"):
        load_config("unet_convnext_atto", overrides=ssl4eo)


def test_ssl4eo_without_network_is_one_clear_line(monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    ssl4eo = {"model": {"pretrained": "ssl4eo"}, "normalize": {"scale": 10000.0}}
    config = load_config("classifier_resnet18", overrides=ssl4eo)
    with pytest.raises(ConfigError) as caught:
        member_for(config).build()
    message = str(caught.value)
    assert "\n" not in message and "could not be fetched" in message
    assert "ssl4eo/resnet18" in message and "model.pretrained: false" in message
    assert "hub/checkpoints/resnet18_sentinel2_all_moco-59bfdff9.pth" in message


def test_weights_that_do_not_fit_are_refused(tmp_path: Path):
    torch.save(timm.create_model("resnet34", in_chans=13).state_dict(), tmp_path / "r34.pth")
    config = load_config(
        "unet_resnet18", overrides={"model": {"pretrained": str(tmp_path / "r34.pth")}}
    )
    with pytest.raises(ConfigError, match="does not match the encoder"):
        member_for(config).build()
    bad_stem = timm.create_model("resnet18", in_chans=6).state_dict()
    torch.save(bad_stem, tmp_path / "six.pth")
    config = load_config(
        "unet_resnet18", overrides={"model": {"pretrained": str(tmp_path / "six.pth")}}
    )
    with pytest.raises(ConfigError, match="takes 6 bands"):
        member_for(config).build()
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    config = load_config(
        "unet_resnet18", overrides={"model": {"pretrained": str(tmp_path / "junk.pth")}}
    )
    with pytest.raises(ConfigError, match=r"junk\.pth: not a readable state dict"):
        member_for(config).build()
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(
            "unet_resnet18", overrides={"model": {"pretrained": str(tmp_path / "none.pth")}}
        )
    with pytest.raises(ConfigError, match="expected false, true, imagenet, ssl4eo"):
        load_config("unet_resnet18", overrides={"model": {"pretrained": 3}})


def _one_step(demo_data, tmp_path: Path, name: str, normalize: dict):
    """Experiment ``name`` trained one step a fold on the demo data with these ``normalize``
    settings: its directory and fold 0's saved normaliser, loaded back."""
    from landcover.experiment import run_experiment
    from landcover.pixels import Normalizer

    overrides = {
        "normalize": normalize,
        "train": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4},
        "predict": {"tta": 1},
        "data": {"n_folds": 2},
        "run": {"threads": 1},
    }
    config = load_config(name, profile="demo", overrides=overrides)
    exp = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    norm = Normalizer(**json.loads((exp / "folds" / "fold0" / "normalizer.json").read_text()))
    return exp, norm


def test_a_fixed_scale_replaces_the_fitted_normaliser(demo_data, tmp_path: Path):
    """``normalize.scale``: the fold's normaliser divides by it (no log, no fitted
    statistics), which is what the SSL4EO weights were trained on."""
    _, norm = _one_step(demo_data, tmp_path, "classifier_resnet18", {"scale": 10000.0})
    assert norm.mean == [0.0] * 4 and norm.std == [10000.0] * 4 and not norm.log
    pixels = torch.tensor([[[[5000]], [[100]], [[20000]], [[0]]]], dtype=torch.int16)
    torch.testing.assert_close(norm(pixels).flatten(), torch.tensor([0.5, 0.01, 2.0, 0.0]))


def test_a_model_file_chooses_pretrained_weights_and_profiles_do_not(tmp_path: Path):
    """Pretrained encoders are a model file's choice (what is learned), with their input scale:
    Sentinel-2 weights for a ResNet-18; the profiles' members train from scratch."""
    path = tmp_path / "unet_resnet18_ssl4eo.yaml"
    path.write_text(
        "model: {arch: Unet, encoder: tu-resnet18, pretrained: ssl4eo}\n"
        f"normalize: {{log: false, scale: {weights.SSL4EO_SCALE}}}\n"
    )
    config = load_config(str(path), profile="full-gpu", overrides={"run": {"device": "cpu"}})
    assert weights.source(config["model"]["pretrained"]) == "ssl4eo"
    assert config["experiment"] == "unet_resnet18_ssl4eo"
    for profile in ("sample-cpu", "full-gpu", "demo"):
        for name in load_profile(profile)["experiments"]:
            config = load_config(name, profile=profile, overrides={"run": {"device": "cpu"}})
            assert weights.source(config["model"]["pretrained"]) is None, (profile, name)


def test_relative_channels_need_the_fitted_normaliser_and_no_four_band_weights(tmp_path: Path):
    """``normalize.patch_relative`` builds networks of 8 input channels, and is refused in one
    line beside ``per_image``, a fixed scale or 4-band weights."""
    config = load_config("unet_regnety_002", overrides=["normalize.patch_relative=true"])
    net = member_for(config).build().eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 8, 32, 32)).shape == (1, 10, 32, 32)
    clash = "normalize.patch_relative adds channels to bands standardised"
    for other in ("normalize.per_image=true", "normalize.scale=10000"):
        with pytest.raises(ConfigError, match=clash):
            load_config("unet_regnety_002", overrides=["normalize.patch_relative=true", other])
    state = tmp_path / "encoder.pt"
    torch.save({}, state)
    with pytest.raises(ConfigError, match="makes 8 input channels"):
        load_config(
            "unet_regnety_002",
            overrides=["normalize.patch_relative=true", f"model.pretrained={state}"],
        )


def test_relative_channels_train_predict_and_reload(demo_data, tmp_path: Path):
    """A network with ``normalize.patch_relative`` trains, predicts its OOF and test rows, and
    saves a normaliser that loads back with its 8 channels (what predict.py and the map read)."""
    exp, norm = _one_step(demo_data, tmp_path, "unet_regnety_002", {"patch_relative": True})
    assert norm.patch_relative
    assert norm(torch.zeros(1, 4, 8, 8, dtype=torch.int16)).shape[1] == 8
    oof = np.loadtxt(exp / "oof.csv", delimiter=",", skiprows=1)[:, 2:]
    assert np.allclose(oof.sum(axis=1), 1)
