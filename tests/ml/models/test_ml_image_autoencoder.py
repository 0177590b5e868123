from __future__ import annotations

import pytest
import torch

from ml.models.image_autoencoder import (
    ImageAutoencoder,
    ImageAutoencoderConfig,
    pool_map,
    top_k_score,
)


def test_shapes_of_reconstruction_map_and_heat_map() -> None:
    net = ImageAutoencoder(ImageAutoencoderConfig(image_size=64, base=8)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        rec = net(x)
    assert rec.shape == x.shape and float(rec.min()) >= 0.0 and float(rec.max()) <= 1.0
    scores, maps = net.raw_scores(x)
    assert scores.shape == (2,) and maps.shape == (2, 64, 64)
    assert pool_map(maps, 8).shape == (2, 8, 8)
    with pytest.raises(ValueError, match="expected"):
        net(torch.rand(2, 3, 32, 32))


def test_top_k_score_is_the_mean_of_the_largest_values() -> None:
    maps = torch.zeros(2, 10, 10)
    maps[0, 0, :2] = torch.tensor([4.0, 2.0])
    out = top_k_score(maps, 0.02)  # 2 of 100 values
    assert out.tolist() == [3.0, 0.0]


def test_config_validation_and_round_trip() -> None:
    cfg = ImageAutoencoderConfig(image_size=96, base=16, depth=5, latent=8, top_k=0.05)
    assert ImageAutoencoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="multiple"):
        ImageAutoencoderConfig(image_size=100, depth=4)
    with pytest.raises(ValueError, match="top_k"):
        ImageAutoencoderConfig(top_k=0.0)
