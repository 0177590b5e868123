"""AnomalyBERT: a transformer that scores every time step of a multichannel window.

After Jeong et al., "AnomalyBERT: Self-Supervised Transformer for Time Series Anomaly
Detection using Data Degradation Scheme" (ICLR 2023 workshop). A window of
``n_patches · patch_size`` steps and ``C`` channels is cut into ``n_patches`` patches
of ``patch_size`` steps; each flattened patch is embedded linearly; a pre-norm
transformer encoder (no absolute positions: every layer adds its own learned bias per
head and *relative* patch offset to the attention logits) mixes the patches; an MLP
head maps each patch's feature to ``patch_size`` logits, one anomaly logit per step.

Published defaults: 6 layers, width 512, 8 heads, feed-forward 2048, GELU, dropout 0.1,
512 patches per window; the patch size depends on the data (e.g. 90 for 1 Hz ESS
data). Everything is configurable (:class:`AnomalyBertConfig`) so small variants train
on a CPU. This module is pure ``torch.nn``: no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


@dataclass(frozen=True)
class AnomalyBertConfig:
    """Hyper-parameters of the network.

    Attributes:
        n_channels: Input channels ``C``.
        patch_size: Time steps per patch.
        n_patches: Patches per window (the window is ``n_patches · patch_size`` steps).
        d_model: Width of the transformer.
        n_layers: Encoder layers.
        n_heads: Attention heads (must divide ``d_model``).
        d_ff: Hidden width of each feed-forward block.
        dropout: Dropout of attention weights, residual branches and the head.
        head_hidden: Hidden width of the prediction head; ``None`` means ``d_model``.

    """

    n_channels: int
    patch_size: int = 90
    n_patches: int = 512
    d_model: int = 512
    n_layers: int = 6
    n_heads: int = 8
    d_ff: int = 2048
    dropout: float = 0.1
    head_hidden: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_channels", "patch_size", "n_patches", "d_model", "n_layers",
                     "n_heads", "d_ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.d_model % self.n_heads:
            raise ValueError("n_heads must divide d_model")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def window(self) -> int:
        """Time steps per window."""
        return self.patch_size * self.n_patches

    @classmethod
    def small(cls, n_channels: int, **overrides: Any) -> AnomalyBertConfig:
        """A CPU-sized variant (2 layers, width 64, 64 patches of 8 steps)."""
        base: dict[str, Any] = {"patch_size": 8, "n_patches": 64, "d_model": 64,
                                "n_layers": 2, "n_heads": 4, "d_ff": 128, "dropout": 0.1}
        return cls(n_channels=n_channels, **{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnomalyBertConfig:
        """Inverse of :meth:`to_dict` (unknown keys are rejected)."""
        return cls(**d)


class RelativePositionBias(nn.Module):
    """A learned bias per head and relative patch offset ``j - i`` (``2N - 1`` values)."""

    def __init__(self, n_patches: int, n_heads: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(n_heads, 2 * n_patches - 1))
        pos = torch.arange(n_patches)
        self.register_buffer("index", (pos[None, :] - pos[:, None]) + n_patches - 1,
                             persistent=False)

    def forward(self) -> Tensor:
        """The bias, shaped ``(heads, N, N)``."""
        index: Tensor = self.index  # type: ignore[assignment]
        return self.table[:, index]


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer with relative position bias."""

    def __init__(self, cfg: AnomalyBertConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.dropout
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.bias = RelativePositionBias(cfg.n_patches, cfg.n_heads)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.d_ff, cfg.d_model),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, D) -> (B, N, D)``."""
        b, n, d = x.shape
        h = self.norm1(x)
        q, k, v = self.qkv(h).view(b, n, 3, self.n_heads, d // self.n_heads).permute(
            2, 0, 3, 1, 4).unbind(0)
        att = F.scaled_dot_product_attention(
            q, k, v, attn_mask=self.bias().unsqueeze(0).to(q.dtype),
            dropout_p=self.dropout if self.training else 0.0,
        )
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class AnomalyBert(nn.Module):
    """The network: ``(B, T, C)`` windows to ``(B, T)`` anomaly logits.

    Args:
        config: Hyper-parameters.

    """

    def __init__(self, config: AnomalyBertConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.patch_size * config.n_channels, config.d_model)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        hidden = config.head_hidden or config.d_model
        self.head = nn.Sequential(
            nn.Linear(config.d_model, hidden), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(hidden, config.patch_size),
        )
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        """Anomaly logits per step.

        Args:
            x: Scaled windows, ``(B, T, C)`` with ``T = config.window``.

        Returns:
            Logits, ``(B, T)`` (apply a sigmoid for probabilities).

        Raises:
            ValueError: ``x`` has the wrong shape.

        """
        cfg = self.config
        if x.ndim != 3 or x.shape[1] != cfg.window or x.shape[2] != cfg.n_channels:
            raise ValueError(
                f"expected (B, {cfg.window}, {cfg.n_channels}) windows, got {tuple(x.shape)}"
            )
        b = x.shape[0]
        patches = x.reshape(b, cfg.n_patches, cfg.patch_size * cfg.n_channels)
        h = self.embed(patches)
        for layer in self.layers:
            h = layer(h)
        logits: Tensor = self.head(self.norm(h))
        return logits.reshape(b, cfg.window)

    def body_parameters(self) -> list[nn.Parameter]:
        """Parameters of everything but the patch embedding (kept on transfer)."""
        embed = {id(p) for p in self.embed.parameters()}
        return [p for p in self.parameters() if id(p) not in embed]

    def with_channels(self, n_channels: int) -> AnomalyBert:
        """A copy for ``n_channels`` inputs: new patch embedding, same body and head.

        When the channel count is unchanged the embedding is copied as well.
        """
        cfg = dataclasses.replace(self.config, n_channels=n_channels)
        model = AnomalyBert(cfg)
        state = {k: v for k, v in self.state_dict().items()
                 if n_channels == self.config.n_channels or not k.startswith("embed.")}
        model.load_state_dict(state, strict=False)
        return model


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
