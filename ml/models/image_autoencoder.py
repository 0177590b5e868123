"""An unsupervised image anomaly detector: a convolutional autoencoder with anomaly maps.

Trained on normal images only, it returns a per-pixel anomaly map.

The encoder halves the resolution ``depth`` times with strided 3×3 convolutions (channels
``base, 2·base, …``) down to a narrow bottleneck; the decoder mirrors it with transposed
convolutions and ends in a sigmoid (images are in ``[0, 1]``). There are no skip
connections: a skip would let a defect pass straight through to the output, and the
detector relies on the bottleneck being unable to reproduce what it never saw.

Trained self-supervised (see :mod:`ml.images.training`): synthetic defects are pasted on
the input while the target stays the clean image, so the network learns to *remove*
defect-like structure rather than to copy any input. The anomaly map is the per-pixel
absolute reconstruction error (mean over channels), smoothed over 3×3 pixels; the image
score is the mean of its top ``top_k`` fraction (:func:`top_k_score`). Normalising that
score by the validation normals' statistics and pooling the map into a heat map happen
outside the network (they need data), in :mod:`ml.images.inference`. Pure ``torch.nn``:
no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


@dataclass(frozen=True)
class ImageAutoencoderConfig:
    """Hyper-parameters of the network.

    Attributes:
        image_size: Input height and width in pixels (a multiple of ``2**depth``).
        in_channels: Input channels (3: RGB).
        base: Channels of the first encoder stage (doubled at every stage).
        depth: Down-sampling stages.
        latent: Channels of the bottleneck.
        top_k: Fraction of the anomaly map's largest values averaged into the score.

    """

    image_size: int = 64
    in_channels: int = 3
    base: int = 32
    depth: int = 4
    latent: int = 32
    top_k: float = 0.02

    def __post_init__(self) -> None:
        for name in ("image_size", "in_channels", "base", "depth", "latent"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.image_size % (2 ** self.depth):
            raise ValueError(f"image_size must be a multiple of 2**depth = {2 ** self.depth}")
        if not 0.0 < self.top_k <= 1.0:
            raise ValueError("top_k must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageAutoencoderConfig:
        """Inverse of :meth:`to_dict` (unknown keys are rejected)."""
        return cls(**d)


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.2, inplace=True))


class ImageAutoencoder(nn.Module):
    """The network: ``(B, C, S, S)`` images in ``[0, 1]`` to reconstructions and maps.

    Args:
        config: Hyper-parameters.

    """

    def __init__(self, config: ImageAutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.base * 2 ** i for i in range(config.depth)]
        enc: list[nn.Module] = []
        c = config.in_channels
        for w in widths:
            enc.append(_down(c, w))
            c = w
        enc.append(nn.Conv2d(c, config.latent, 1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(config.latent, c, 1), nn.LeakyReLU(0.2, inplace=True)]
        for w in reversed([config.base, *widths[:-1]]):
            dec.append(_up(c, w))
            c = w
        dec.append(nn.Conv2d(c, config.in_channels, 3, 1, 1))
        self.decoder = nn.Sequential(*dec)

    def _check(self, x: Tensor) -> None:
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels or x.shape[2] != cfg.image_size \
                or x.shape[3] != cfg.image_size:
            raise ValueError(f"expected (B, {cfg.in_channels}, {cfg.image_size}, "
                             f"{cfg.image_size}) images, got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction, the same shape as ``x`` (values in ``[0, 1]``).

        Raises:
            ValueError: ``x`` has the wrong shape.

        """
        self._check(x)
        out: Tensor = torch.sigmoid(self.decoder(self.encoder(x)))
        return out

    def anomaly_map(self, x: Tensor) -> Tensor:
        """Per-pixel anomaly map ``(B, S, S)``: smoothed absolute reconstruction error."""
        err = (self(x) - x).abs().mean(dim=1, keepdim=True)
        smoothed: Tensor = F.avg_pool2d(err, 3, 1, 1, count_include_pad=False)
        return smoothed.squeeze(1)

    def raw_scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Un-normalised image scores ``(B,)`` and the anomaly maps ``(B, S, S)``."""
        maps = self.anomaly_map(x)
        return top_k_score(maps, self.config.top_k), maps


def top_k_score(maps: Tensor, top_k: float) -> Tensor:
    """Mean of the largest ``top_k`` fraction of each map's values, ``(B, H, W) -> (B,)``."""
    flat = maps.flatten(1)
    k = max(1, round(flat.shape[1] * top_k))
    return flat.topk(k, dim=1).values.mean(dim=1)


def pool_map(maps: Tensor, grid: int) -> Tensor:
    """Maps ``(B, S, S)`` averaged over a ``grid × grid`` raster of cells."""
    return F.adaptive_avg_pool2d(maps.unsqueeze(1), grid).squeeze(1)
