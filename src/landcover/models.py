"""Models built by name from the ``model`` section of a config.

Every network maps a (B, 4, H, W) float tensor to class logits: per pixel (B, 10, H, W) for
segmentation models, per image (B, 10) for the image-level classifier. Soft proportions are the
mean of the per-pixel softmax (or the image softmax).
"""

from __future__ import annotations

import torch
from torch import nn

from .constants import N_BANDS, N_CLASSES
from .errors import ConfigError


class _BNConvReLU(nn.Sequential):
    """BatchNorm, then a 3x3 convolution with ReLU (he-normal init), as in the Keras original."""

    def __init__(self, cin: int, cout: int) -> None:
        conv = nn.Conv2d(cin, cout, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        super().__init__(nn.BatchNorm2d(cin, eps=1e-3, momentum=0.01), conv, nn.ReLU(inplace=True))


class _BNUpConvReLU(nn.Sequential):
    """BatchNorm, then a 3x3 stride-2 transposed convolution with ReLU (doubles H and W)."""

    def __init__(self, cin: int, cout: int) -> None:
        up = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
        super().__init__(nn.BatchNorm2d(cin, eps=1e-3, momentum=0.01), up, nn.ReLU(inplace=True))


class BenchmarkUNet(nn.Module):
    """The organisers' benchmark U-Net re-implemented in PyTorch.

    As described in their README (preligens-lab/challenge-ens): 64 feature maps in the
    contracting path, 64 or 96 in the expanding path, transposed convolutions, 21 convolutions
    counting the 1x1 head to 10 classes: 984,234 trainable parameters with ``num_layers=2``.
    The softmax is left to the loss and to prediction; this returns logits.
    """

    def __init__(self, in_channels: int = N_BANDS, classes: int = N_CLASSES, num_layers: int = 2):
        super().__init__()
        f, up_f = 64, 96
        stem = nn.Conv2d(in_channels, f, 3, padding=1)
        nn.init.kaiming_normal_(stem.weight, nonlinearity="relu")
        nn.init.zeros_(stem.bias)
        self.stem = nn.Sequential(stem, nn.ReLU(inplace=True))
        self.c1 = _BNConvReLU(f, f)
        self.c1b = _BNConvReLU(f, f)
        self.pool = nn.MaxPool2d(2)
        self.down = nn.ModuleList(
            nn.ModuleList([_BNConvReLU(f, f), _BNConvReLU(f, f), _BNConvReLU(f, f)])
            for _ in range(num_layers)
        )
        self.bottom = nn.Sequential(_BNConvReLU(f, f), _BNConvReLU(f, f), _BNUpConvReLU(f, f))
        self.up = nn.ModuleList(
            nn.Sequential(_BNConvReLU(2 * f, up_f), _BNConvReLU(up_f, f), _BNUpConvReLU(f, f))
            for _ in range(num_layers)
        )
        self.final = nn.Sequential(_BNConvReLU(2 * f, up_f), _BNConvReLU(up_f, f))
        self.head = nn.Conv2d(f, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.c1(self.stem(x))
        x = self.pool(self.c1b(c1))
        skips = []
        for first, second, third in self.down:
            x = second(first(x))
            skips.append(x)
            x = self.pool(third(x))
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(torch.cat([x, skip], dim=1))
        x = self.final(torch.cat([x, c1], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _pretrained_error(name: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"pretrained weights for '{name}' could not be fetched ({type(err).__name__}: "
        f"{str(err).split('. ')[0][:200]}); set model.pretrained: false to train from scratch, "
        "or make the weights available in the Hugging Face cache (HF_HOME) first"
    )


def is_network(model_cfg: dict) -> bool:
    """Whether the model is a torch network (LightGBM members are not)."""
    return model_cfg["kind"] != "pixel_gbm"


def check_model(model_cfg: dict) -> None:
    """Fail early on a model that cannot be built (bad name, unavailable pretrained weights)."""
    if is_network(model_cfg):
        build_model(model_cfg)


def build_model(model_cfg: dict) -> nn.Module:
    """Instantiate the network described by a config's ``model`` section."""
    kind = model_cfg["kind"]
    params = dict(model_cfg.get("params") or {})
    if kind == "benchmark_unet":
        return BenchmarkUNet(**params)
    if kind == "smp":
        import segmentation_models_pytorch as smp

        # timm-universal encoders take True (the tag in the name picks the weights)
        encoder = model_cfg["encoder"]
        weights = (
            (True if encoder.startswith("tu-") else "imagenet") if model_cfg["pretrained"] else None
        )
        try:
            return smp.create_model(
                model_cfg["arch"],
                encoder_name=model_cfg["encoder"],
                encoder_weights=weights,
                in_channels=N_BANDS,
                classes=N_CLASSES,
                **params,
            )
        except (KeyError, ValueError, TypeError) as err:
            raise ConfigError(
                f"cannot build smp {model_cfg['arch']}/{model_cfg['encoder']}: {err}"
            ) from None
        except OSError as err:  # hub download failures (no network, no cached file)
            raise _pretrained_error(model_cfg["encoder"], err) from None
    if kind == "classifier":
        import timm

        try:
            return timm.create_model(
                model_cfg["encoder"],
                pretrained=model_cfg["pretrained"],
                in_chans=N_BANDS,
                num_classes=N_CLASSES,
                **params,
            )
        except RuntimeError as err:
            raise ConfigError(f"cannot build timm model '{model_cfg['encoder']}': {err}") from None
        except OSError as err:
            raise _pretrained_error(model_cfg["encoder"], err) from None
    raise ConfigError(f"model.kind {kind!r} is not a network")
