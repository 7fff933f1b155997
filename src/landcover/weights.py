"""Pretrained weights for the network members: what ``model.pretrained`` may say, and how a
state dict reaches the encoder.

- ``false`` (or null): from scratch.
- ``true`` or ``imagenet``: ImageNet weights, through timm / smp (downloaded once to the
  Hugging Face cache; 3-band stems are adapted to 4 bands by timm).
- ``ssl4eo``: self-supervised Sentinel-2 weights (SSL4EO-S12, MoCo, all 13 bands of L1C) as
  torchgeo publishes them, with timm key names, for ``resnet18`` and ``resnet50`` encoders.
- a path to a state dict (``.pt``/``.pth``, or ``.safetensors``) with timm key names, for the
  encoder (a classification head in it is dropped).

A 13-band first convolution keeps the channels of B2, B3, B4 and B8 (indices 1, 2, 3 and 7 of
B1, B2, ..., B8, B8A, ..., B12): the challenge's bands behave as blue, green, red and NIR. The
SSL4EO weights expect reflectance / 10,000: a model file that uses them sets
``normalize.scale: 10000`` (checked, with the error saying so).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError

SSL4EO_URLS = {  # torchgeo's ResNet{18,50}_Weights.SENTINEL2_ALL_MOCO
    "resnet18": "https://hf.co/torchgeo/resnet18_sentinel2_all_moco/resolve/"
    "5b8cddc9a14f3844350b7f40b85bcd32aed75918/resnet18_sentinel2_all_moco-59bfdff9.pth",
    "resnet50": "https://hf.co/torchgeo/resnet50_sentinel2_all_moco/resolve/"
    "da4f3c9dbe09272eb902f3b37f46635fa4726879/resnet50_sentinel2_all_moco-df8b932e.pth",
}
SSL4EO_SCALE = 10000.0
S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
CHALLENGE_BANDS = (1, 2, 3, 7)  # B2, B3, B4, B8 in S2_BANDS: blue, green, red, NIR
HEAD_PREFIXES = ("fc.", "head.", "classifier.")


def source(value: object) -> str | Path | None:
    """``model.pretrained`` checked: None (from scratch), "imagenet", "ssl4eo" or a file."""
    if value is None or value is False:
        return None
    if value is True or value == "imagenet":
        return "imagenet"
    if value == "ssl4eo":
        return "ssl4eo"
    if isinstance(value, str) and value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"model.pretrained: {value!r} is not a file (expected false, true, imagenet, "
                "ssl4eo or the path of a state dict)"
            )
        return path
    raise ConfigError(
        f"model.pretrained: {value!r} (expected false, true, imagenet, ssl4eo or the path of a "
        "state dict)"
    )


def check(config: dict) -> None:
    """Errors a run would otherwise meet late: ssl4eo for an encoder it has no weights for, or
    without the input scale they were trained on."""
    chosen = source(config["model"]["pretrained"])
    if chosen != "ssl4eo":
        return
    encoder = _timm_name(config["model"]["encoder"])
    if encoder not in SSL4EO_URLS:
        raise ConfigError(
            f"model.pretrained: ssl4eo has weights for {', '.join(SSL4EO_URLS)} only, not "
            f"'{config['model']['encoder']}'"
        )
    if config["normalize"]["scale"] != SSL4EO_SCALE:
        raise ConfigError(
            "model.pretrained: ssl4eo weights expect reflectance / 10000: set "
            "normalize.scale: 10000"
        )


def _timm_name(encoder: str) -> str:
    return encoder.removeprefix("tu-")


def fetch_error(
    name: str, err: Exception, cache: str = "the Hugging Face cache (HF_HOME)"
) -> ConfigError:
    return ConfigError(
        f"pretrained weights for '{name}' could not be fetched ({type(err).__name__}: "
        f"{str(err).split('. ')[0][:200]}); set model.pretrained: false to train from scratch, "
        f"or make the weights available in {cache} first"
    )


def state_dict(chosen: str | Path, encoder: str) -> dict[str, torch.Tensor]:
    """The weights ``chosen`` ("ssl4eo" or a file) for ``encoder``, on the CPU."""
    if chosen == "ssl4eo":
        url = SSL4EO_URLS[_timm_name(encoder)]
        try:
            return torch.hub.load_state_dict_from_url(
                url, map_location="cpu", weights_only=True, progress=False
            )
        except OSError as err:  # URLError, HTTPError and socket errors are OSErrors
            name, file = f"ssl4eo/{_timm_name(encoder)}", url.rsplit("/", 1)[1]
            raise fetch_error(
                name, err, f"the torch hub cache (TORCH_HOME/hub/checkpoints/{file})"
            ) from None
    path = Path(chosen)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(
            f"{path}: not a readable state dict ({type(err).__name__}: {err})"
        ) from None
    if isinstance(loaded, dict) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: holds a {type(loaded).__name__}, not a state dict")
    return loaded


def four_bands(weight: torch.Tensor, where: str) -> torch.Tensor:
    """A first convolution's weight (out, in, k, k) for the challenge's 4 bands: 13 Sentinel-2
    bands keep B2, B3, B4 and B8; 4 are taken as they are."""
    bands = weight.shape[1]
    if bands == len(S2_BANDS):
        return weight[:, list(CHALLENGE_BANDS)].clone()
    if bands == len(CHALLENGE_BANDS):
        return weight
    raise ConfigError(
        f"{where}: the first convolution takes {bands} bands; expected 13 (Sentinel-2, "
        "B1..B12 with B8A) or 4 (blue, green, red, NIR)"
    )


def load_into(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load an encoder's ``state`` (timm key names) into ``module``: the first convolution cut
    to 4 bands, a head dropped; the module's own head may stay as initialised, every other
    weight must be there and fit."""
    state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    own = module.state_dict()
    stem = next((k for k, v in own.items() if v.ndim == 4), None)
    if stem in state:
        state[stem] = four_bands(state[stem], where)
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise ConfigError(
            f"{where}: {len(wrong)} weights do not fit the encoder, e.g. {wrong[0]} "
            f"{tuple(state[wrong[0]].shape)} against {tuple(own[wrong[0]].shape)}"
        )
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(HEAD_PREFIXES)]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise ConfigError(
            f"{where}: the state dict does not match the encoder ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, e.g. {example})"
        )


def apply(model: nn.Module, encoder_module: nn.Module, config: dict) -> nn.Module:
    """Load ``model.pretrained`` ("ssl4eo" or a file) into ``encoder_module`` (a part of
    ``model``, or the model itself); ImageNet weights and none are left to the builder."""
    chosen = source(config["model"]["pretrained"])
    if chosen is None or chosen == "imagenet":
        return model
    where = f"model.pretrained {chosen}"
    load_into(encoder_module, state_dict(chosen, config["model"]["encoder"]), where)
    return model
