"""``model.kind: classifier``: an image-level timm network whose softmax is the proportion
vector (no per-pixel output, so no masks and no pixel loss)."""

from __future__ import annotations

from torch import nn

from .. import weights
from ..constants import N_CLASSES
from ..errors import ConfigError
from .base import register
from .network import NetworkMember


@register("classifier")
class ClassifierMember(NetworkMember):
    predicts_masks = False

    @classmethod
    def validate(cls, config: dict) -> None:
        super().validate(config)
        if config["loss"]["ce_weight"]:
            raise ConfigError("an image-level model has no pixel loss: set loss.ce_weight: 0")

    def build(self) -> nn.Module:
        import timm

        cfg = self.config["model"]
        try:
            model = timm.create_model(
                cfg["encoder"],
                pretrained=weights.source(cfg["pretrained"]) == "imagenet",
                in_chans=self.in_channels,
                num_classes=N_CLASSES,
                **dict(cfg.get("params") or {}),
            )
        except RuntimeError as err:
            raise ConfigError(f"cannot build timm model '{cfg['encoder']}': {err}") from None
        except OSError as err:
            raise weights.fetch_error(cfg["encoder"], err) from None
        return weights.apply(model, model, self.config)
