"""``model.kind: smp``: any segmentation-models-pytorch architecture on any encoder (a timm
backbone as ``tu-<name>``), per-pixel logits."""

from __future__ import annotations

from torch import nn

from ..constants import N_BANDS, N_CLASSES
from ..errors import ConfigError
from .base import register
from .network import NetworkMember, pretrained_error


@register("smp")
class SmpMember(NetworkMember):
    def build(self) -> nn.Module:
        import segmentation_models_pytorch as smp

        cfg = self.config["model"]
        # timm-universal encoders take True (the tag in the name picks the weights)
        encoder = cfg["encoder"]
        weights = (True if encoder.startswith("tu-") else "imagenet") if cfg["pretrained"] else None
        try:
            return smp.create_model(
                cfg["arch"],
                encoder_name=encoder,
                encoder_weights=weights,
                in_channels=N_BANDS,
                classes=N_CLASSES,
                **dict(cfg.get("params") or {}),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise ConfigError(f"cannot build smp {cfg['arch']}/{encoder}: {err}") from None
        except OSError as err:  # hub download failures (no network, no cached file)
            raise pretrained_error(encoder, err) from None
