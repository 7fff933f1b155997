"""``model.kind: benchmark_unet``: the organisers' benchmark U-Net, the official recipe's
network (the recipe itself, loss and argmax counting, is ``configs/models/benchmark_unet.yaml``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..constants import N_BANDS, N_CLASSES
from .base import register
from .network import NetworkMember


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


@register("benchmark_unet")
class BenchmarkUNetMember(NetworkMember):
    def build(self) -> nn.Module:
        params = dict(self.config["model"].get("params") or {})
        return BenchmarkUNet(in_channels=self.in_channels, **params)
