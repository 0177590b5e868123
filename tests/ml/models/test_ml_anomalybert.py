from __future__ import annotations

import pytest
import torch

from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig

torch.set_num_threads(1)


def test_published_defaults() -> None:
    cfg = AnomalyBertConfig(n_channels=9)
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.d_ff) == (6, 512, 8, 2048)
    assert (cfg.dropout, cfg.n_patches, cfg.patch_size) == (0.1, 512, 90)
    assert cfg.window == 512 * 90


def test_default_network_scores_one_window() -> None:
    torch.manual_seed(0)
    model = AnomalyBert(AnomalyBertConfig(n_channels=3)).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, model.config.window, 3))
    assert out.shape == (1, 512 * 90)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("patch", "patches", "channels"), [(1, 5, 1), (3, 7, 2), (8, 16, 9)])
def test_one_logit_per_step(patch: int, patches: int, channels: int) -> None:
    cfg = AnomalyBertConfig(n_channels=channels, patch_size=patch, n_patches=patches,
                            d_model=16, n_layers=2, n_heads=2, d_ff=32)
    model = AnomalyBert(cfg)
    out = model(torch.randn(4, cfg.window, channels))
    assert out.shape == (4, cfg.window)
    out.sum().backward()  # differentiable end to end
    assert model.embed.weight.grad is not None


def test_rejects_wrong_shapes() -> None:
    model = AnomalyBert(AnomalyBertConfig.small(3, n_patches=4))
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, model.config.window + 1, 3))
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, model.config.window, 4))


def test_relative_position_bias_per_layer_and_no_absolute_positions() -> None:
    cfg = AnomalyBertConfig.small(2, n_patches=6, n_layers=3, n_heads=4)
    model = AnomalyBert(cfg)
    tables = [layer.bias.table for layer in model.layers]  # type: ignore[union-attr]
    assert len(tables) == 3 and all(t.shape == (4, 11) for t in tables)
    assert not any("pos" in name and "bias" not in name for name, _ in model.named_parameters())
    with torch.no_grad():
        tables[0][:, 7].fill_(1.5)  # offset +2
    bias = model.layers[0].bias()  # type: ignore[operator]
    assert bias.shape == (4, 6, 6)
    assert torch.all(bias[:, 0, 2] == 1.5) and torch.all(bias[:, 3, 5] == 1.5)


def test_config_validation_and_round_trip() -> None:
    cfg = AnomalyBertConfig.small(5)
    assert AnomalyBertConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        AnomalyBertConfig(n_channels=2, d_model=30, n_heads=4)
    with pytest.raises(ValueError):
        AnomalyBertConfig(n_channels=0)


def test_with_channels_keeps_the_body_and_reinitialises_the_embedding() -> None:
    model = AnomalyBert(AnomalyBertConfig.small(9, n_patches=8))
    other = model.with_channels(6)
    assert other.embed.weight.shape == (64, 8 * 6)
    src, dst = model.state_dict(), other.state_dict()
    for key, value in src.items():
        if not key.startswith("embed."):
            assert torch.equal(value, dst[key]), key
    same = model.with_channels(9)
    assert torch.equal(same.embed.weight, model.embed.weight)
    assert same is not model
