"""``model.kind: smp``: any segmentation-models-pytorch architecture on any encoder (a timm
backbone as ``tu-<name>``), per-pixel logits."""

from __future__ import annotations

from torch import nn

from .. import weights
from ..constants import N_CLASSES
from ..errors import ConfigError
from .base import register
from .network import NetworkMember


@register("smp")
class SmpMember(NetworkMember):
    def build(self) -> nn.Module:
        import segmentation_models_pytorch as smp

        cfg = self.config["model"]
        encoder = cfg["encoder"]
        imagenet = weights.source(cfg["pretrained"]) == "imagenet"
        # timm-universal encoders take True (the tag in the name picks the weights)
        hub = (True if encoder.startswith("tu-") else "imagenet") if imagenet else None
        try:
            model = smp.create_model(
                cfg["arch"],
                encoder_name=encoder,
                encoder_weights=hub,
                in_channels=self.in_channels,
                classes=N_CLASSES,
                **dict(cfg.get("params") or {}),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise ConfigError(f"cannot build smp {cfg['arch']}/{encoder}: {err}") from None
        except OSError as err:  # hub download failures (no network, no cached file)
            raise weights.fetch_error(encoder, err) from None
        # a timm-universal encoder keeps the timm model (timm key names) as .model
        return weights.apply(model, getattr(model.encoder, "model", model.encoder), self.config)
