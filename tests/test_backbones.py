"""Backbones (method §2): output channels/strides, exact parameter counts, freezing, official key names."""

import pytest
import torch
from helpers.official_keys import official_shapes
from torch import nn

from wsfcn.model.backbones import BACKBONES, VGG16, Backbone, MiniResNet, ResNet38, build_backbone


@pytest.fixture(scope="module")
def resnet38() -> ResNet38:
    torch.manual_seed(0)
    return build_backbone("resnet38")


def count(backbone: nn.Module) -> tuple[int, int]:
    params = list(backbone.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if not p.requires_grad)


# total / frozen after freeze()+train(). R38: method §2.1. The others follow from method §2.2:
# R50 trainable baseline 41,205,940 − heads 17,697,908 (R38 heads 32,902,260 with the ASPP input
# halved: −256·2048·29); frozen = 41,205,940 − 41,143,412. VGG16: 30,579,636 − 30,540,916 frozen.
EXPECTED_COUNTS = {
    "resnet38": (105_070_912, 868_672),
    "resnet50": (23_508_032, 62_528),
    "resnet101": (42_500_160, 114_752),
    "vgg16": (20_483_904, 38_720),
    "mini": (619_792, 0),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_parameter_counts(name):
    with torch.device("meta"):
        backbone = BACKBONES[name]()
    assert count(backbone)[1] == 0  # nothing frozen before freeze()
    backbone.freeze()
    backbone.train()
    assert count(backbone) == EXPECTED_COUNTS[name]


def test_method_heads_plus_backbone_give_the_paper_totals():
    """method §2.2/§11: R38 baseline 137,973,172 = backbone + heads; R50 = 41,205,940 with 2048-ch ASPP."""
    heads_r38 = 30_739_456 + 263_680 + 12_384 + 700_928 + 1_185_812
    assert EXPECTED_COUNTS["resnet38"][0] + heads_r38 == 137_973_172
    heads_r50 = heads_r38 - 256 * (4096 - 2048) * 29  # ASPP: 29 kernel taps per input channel
    assert EXPECTED_COUNTS["resnet50"][0] + heads_r50 == 41_205_940
    heads_vgg = heads_r38 - 256 * (4096 - 1024) * 29
    assert EXPECTED_COUNTS["vgg16"][0] + heads_vgg == 30_579_636


@pytest.mark.parametrize("name", ["mini", "resnet50", "resnet101", "vgg16"])
def test_channels_and_strides(name):
    torch.manual_seed(0)
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        low, deep = backbone(torch.randn(1, 3, 64, 64))
    stride = backbone.output_stride
    assert low.shape == (1, backbone.low_channels, 16, 16)
    assert deep.shape == (1, backbone.deep_channels, 64 // stride, 64 // stride)
    assert (backbone.low_channels, backbone.deep_channels, stride) == {
        "mini": (64, 256, 8),
        "resnet50": (256, 2048, 16),
        "resnet101": (256, 2048, 16),
        "vgg16": (256, 1024, 16),
    }[name]


def test_vgg16_output_stride_option():
    backbone = build_backbone("vgg16", output_stride=8).eval()
    with torch.no_grad():
        low, deep = backbone(torch.randn(1, 3, 32, 32))
    assert backbone.output_stride == 8 and VGG16.output_stride == 16
    assert low.shape[-2:] == (8, 8) and deep.shape[-2:] == (4, 4)
    assert backbone.conv4_1.stride == (1, 1) and VGG16().conv4_1.stride == (2, 2)
    with pytest.raises(ValueError, match="output_stride"):
        VGG16(output_stride=4)


def test_resnet38_forward(resnet38):
    resnet38.eval()
    with torch.no_grad():
        low, deep = resnet38(torch.randn(1, 3, 48, 48))
    assert low.shape == (1, 256, 12, 12) and deep.shape == (1, 4096, 6, 6)
    assert deep.min() >= 0  # bn7 → ReLU
    assert low.min() < 0  # raw b3_2 output, before any BN/ReLU


def test_resnet38_names_equal_the_official_backbone_keys():
    with torch.device("meta"):
        state = ResNet38().state_dict()
    top = {k.split(".")[0] for k in state}
    official = {k: s for k, s in official_shapes().items() if k.split(".")[0] in top}
    assert {k: tuple(v.shape) for k, v in state.items()} == official
    assert len(official) == 228 and "b7.conv_branch2b2.weight" in official


def test_resnet38_dilations_and_dropout():
    with torch.device("meta"):
        net = ResNet38()
    assert net.b5.conv_branch2a.dilation == (1, 1) and net.b5.conv_branch2b1.dilation == (2, 2)
    assert net.b5_2.conv_branch2a.dilation == (2, 2)
    assert net.b6.conv_branch2b1.dilation == (4, 4) and net.b7.conv_branch2b1.dilation == (4, 4)
    assert (net.b6.dropout_2b1.p, net.b7.dropout_2b2.p) == (0.3, 0.5)
    assert not hasattr(net.b3_1, "conv_branch1") and hasattr(net.b3, "conv_branch1")


def test_resnet38_frozen_layers_and_bn(resnet38):
    """After train(): every BN in eval, BN/conv1a/b2 get no grad, b3+ convs do; running stats fixed."""
    resnet38.train()
    bns = [m for m in resnet38.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 37 and not any(bn.training for bn in bns)
    assert resnet38.b7.dropout_2b2.training  # dropout stays active
    stats = resnet38.b3.bn_branch2a.running_mean.clone()
    low, deep = resnet38(torch.randn(2, 3, 32, 32))
    (low.mean() + deep.mean()).backward()
    assert torch.equal(resnet38.b3.bn_branch2a.running_mean, stats)
    for name, p in resnet38.named_parameters():
        frozen = name.startswith(("conv1a.", "b2.", "b2_1.", "b2_2.", "bn")) or ".bn_" in name
        assert p.requires_grad is not frozen, name
        assert (p.grad is None) is frozen, name
    resnet38.zero_grad(set_to_none=True)


def test_resnet50_frozen_stem():
    backbone = build_backbone("resnet50").train()
    assert not backbone.conv1.weight.requires_grad and not backbone.bn1.weight.requires_grad
    assert not backbone.layer2[0].downsample[1].training
    assert backbone.layer2[0].conv2.weight.requires_grad and backbone.layer2[0].conv2.stride == (2, 2)
    assert backbone.layer4[0].conv2.stride == (1, 1) and backbone.layer4[0].conv2.dilation == (1, 1)
    assert "layer1.0.downsample.0.weight" in backbone.state_dict()


def test_mini_trains_everything():
    torch.manual_seed(0)
    backbone = build_backbone("mini").train()
    assert isinstance(backbone, MiniResNet)
    assert all(m.training for m in backbone.modules())
    stats = backbone.bn_out.running_mean.clone()
    low, deep = backbone(torch.randn(4, 3, 32, 32))
    (low.mean() + deep.mean()).backward()
    assert not torch.equal(backbone.bn_out.running_mean, stats)  # BN statistics do update
    for name, p in backbone.named_parameters():
        assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name


def test_build_backbone_rejects_unknown_name():
    with pytest.raises(KeyError, match="resnet38"):
        build_backbone("resnet18")
    assert all(issubclass(cls, Backbone) for cls in BACKBONES.values())
    assert sorted(BACKBONES) == ["mini", "resnet101", "resnet38", "resnet50", "vgg16"]
