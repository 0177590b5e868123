"""ResNet-18 in plain torch: a binary defect classifier for equipment images.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016): a stem, four
stages of two :class:`BasicBlock` each (``[2, 2, 2, 2]``, widths ``w, 2w, 4w, 8w`` with
``w = 64`` in the standard network), global average pooling and a linear head. The
standard stem (7×7 stride-2 convolution and a 3×3 stride-2 max-pool) suits 224 px
inputs; :attr:`ResNetConfig.small_input` swaps it for a 3×3 stride-1 convolution and no
pooling, the usual choice for ~32–128 px inputs, so that small images are not reduced
to a 2×2 map before the last stage. With ``width=64`` and ``num_classes=1000`` the
parameter count is the published 11,689,512. torchvision is not used: its PyPI build
does not load with the CPU torch wheel, and pretrained weights cannot be fetched here.
This module is pure ``torch.nn``: no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass(frozen=True)
class ResNetConfig:
    """Hyper-parameters of the network.

    Attributes:
        image_size: Input height and width in pixels (square inputs).
        in_channels: Input channels (3: RGB).
        width: Channels of the first stage (64 in the standard ResNet-18).
        blocks: Basic blocks per stage (``(2, 2, 2, 2)``: ResNet-18).
        small_input: 3×3 stride-1 stem without max-pool (for small images).
        num_classes: Outputs; 1 means one defect logit.
        dropout: Dropout before the head.
        pool: Global pooling before the head: ``avg`` (the standard ResNet) or ``max``
            (a small local defect, a few cells of the last feature map, is not diluted
            by the defect-free rest of the image).
        zero_init_residual: Start the last batch norm of every residual branch at zero
            (Goyal et al. 2017), so that every block starts as an identity. It helps long
            large-batch schedules; in a short run from scratch on a few thousand images
            it keeps the network nearly linear for most of the run (the training loss
            hardly moves in 10 epochs), so it is off by default.

    """

    image_size: int = 224
    in_channels: int = 3
    width: int = 64
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    small_input: bool = False
    num_classes: int = 1
    dropout: float = 0.0
    pool: str = "avg"
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        for name in ("image_size", "in_channels", "width", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if not self.blocks or any(b < 1 for b in self.blocks):
            raise ValueError("blocks must be positive counts, one per stage")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")
        if self.pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {self.pool!r}")
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResNetConfig:
        """Inverse of :meth:`to_dict` (unknown keys are rejected)."""
        return cls(**{**d, "blocks": tuple(d.get("blocks", (2, 2, 2, 2)))})


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, c_in, H, W) -> (B, c_out, H/stride, W/stride)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: Tensor = self.relu(out + self.shortcut(x))
        return result


class ResNet(nn.Module):
    """The network: ``(B, C, H, W)`` images (normalised) to ``(B, num_classes)`` logits.

    Args:
        config: Hyper-parameters.

    """

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        if config.small_input:
            self.stem = nn.Sequential(nn.Conv2d(config.in_channels, w, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(config.in_channels, w, 7, 2, 3, bias=False),
                                      nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        c_in = w
        for i, n in enumerate(config.blocks):
            c_out = w * 2 ** i
            blocks = [BasicBlock(c_in, c_out, 1 if i == 0 else 2)]
            blocks += [BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool: nn.Module = (nn.AdaptiveMaxPool2d(1) if config.pool == "max"
                                else nn.AdaptiveAvgPool2d(1))
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, config.num_classes)
        self.apply(_init_weights)
        if config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        """Logits.

        Args:
            x: Normalised images, ``(B, in_channels, image_size, image_size)``.

        Returns:
            ``(B, num_classes)`` logits; with one class, ``(B,)`` defect logits.

        Raises:
            ValueError: ``x`` has the wrong shape.

        """
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"expected (B, {cfg.in_channels}, H, W) images, got "
                             f"{tuple(x.shape)}")
        h = self.stages(self.stem(x))
        logits: Tensor = self.head(self.drop(self.pool(h).flatten(1)))
        return logits.squeeze(1) if cfg.num_classes == 1 else logits


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.01)
        nn.init.zeros_(module.bias)
