from __future__ import annotations

import pytest
import torch

from ml.models.resnet import BasicBlock, ResNet, ResNetConfig


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_standard_resnet18_has_the_published_parameter_count() -> None:
    net = ResNet(ResNetConfig(num_classes=1000))
    assert _params(net) == 11_689_512  # torchvision's resnet18()
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8  # [2, 2, 2, 2]
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_binary_head_narrow_width_and_small_stem() -> None:
    cfg = ResNetConfig(image_size=64, width=16, small_input=True)
    net = ResNet(cfg).eval()
    out = net(torch.rand(3, 3, 64, 64))
    assert out.shape == (3,)  # one defect logit per image
    # width scales every stage: 16 → 128 channels into the head
    assert net.head.in_features == 128 and _params(net) < _params(ResNet(ResNetConfig()))
    # the small-input stem keeps full resolution (no stride, no max-pool)
    assert net.stem(torch.rand(1, 3, 64, 64)).shape[-1] == 64
    assert ResNet(ResNetConfig()).stem(torch.rand(1, 3, 64, 64)).shape[-1] == 16
    with pytest.raises(ValueError, match="expected"):
        net(torch.rand(3, 1, 64, 64))


def test_config_round_trip_and_validation() -> None:
    cfg = ResNetConfig(image_size=96, width=32, small_input=True, dropout=0.1)
    assert ResNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ResNetConfig(width=0)
    with pytest.raises(ValueError):
        ResNetConfig(blocks=())
    with pytest.raises(TypeError):
        ResNetConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_max_pool_head_sees_a_single_hot_cell() -> None:
    torch.manual_seed(0)
    net = ResNet(ResNetConfig(image_size=32, width=8, small_input=True, pool="max")).eval()
    assert isinstance(net.pool, torch.nn.AdaptiveMaxPool2d)
    h = torch.zeros(1, 64, 4, 4)
    h[0, :, 1, 2] = 1.0  # one cell of the last feature map: max keeps it, avg divides by 16
    assert torch.allclose(net.pool(h).flatten(), torch.ones(64))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2,)
    assert ResNetConfig.from_dict(ResNetConfig(pool="max").to_dict()).pool == "max"
    assert ResNetConfig.from_dict({"image_size": 32}).pool == "avg"  # older models
    with pytest.raises(ValueError, match="pool"):
        ResNetConfig(pool="mean")
