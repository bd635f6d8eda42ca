"""Context modules (Tables I/II): shapes, gradients, parameter counts, official key names, FCA switches."""

import pytest
import torch
from torch import nn

from wsfcn.model import count_parameters
from wsfcn.model.context import CONTEXT_MODULES, build_context
from wsfcn.model.context.fca import FCAContext
from wsfcn.model.layers import FrozenStatsBatchNorm2d

# (name, options) at toy width: every registry entry plus the variants of each switch
VARIANTS = [(name, {}) for name in sorted(CONTEXT_MODULES)] + [
    ("aspp", {"output_stride": 16}),
    ("fca", {"srm": False}),
    ("fca", {"form": "paper"}),
    ("fca", {"form": "paper", "srm": False}),
    ("fca", {"mclm": False}),
    ("fca", {"mclm": False, "form": "paper"}),
    ("fca", {"output_stride": 16}),
    ("nonlocal", {"softmax_over": "queries"}),
]

# trainable parameters at 4096 → 256 (method §11; FCA without the four unused branch BNs)
FULL_WIDTH = [
    ("aspp", {}, 30_739_456),
    ("fca", {}, 37_162_002 - 2_048),
    ("fca", {"srm": False}, 37_159_936),
    ("fca", {"form": "paper"}, 38_273_554),
    ("fca", {"mclm": False, "srm": False}, 30_739_456),
    ("ppm", {}, 35_660_288),
    ("largeconv", {}, 51_380_736),
    ("nonlocal", {}, 34_603_520),
]


def _weighted_sum(out: torch.Tensor) -> torch.Tensor:
    return (out * torch.randn_like(out)).sum()


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_forward_backward(name, options):
    torch.manual_seed(0)
    module = build_context(name, 32, 16, **options).train()
    x = torch.randn(2, 32, 9, 9)
    out = module(x)
    assert out.shape == (2, 16, 9, 9)
    assert torch.isfinite(out).all()
    _weighted_sum(out).backward()
    for n, p in module.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {n}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name}: zero gradient for {n}"


@pytest.mark.parametrize(("name", "options", "expected"), FULL_WIDTH, ids=lambda v: str(v))
def test_full_width_parameter_counts(name, options, expected):
    with torch.device("meta"):  # construction only, no memory or forward
        module = build_context(name, 4096, 256, **options)
    assert count_parameters(module.train()) == expected
    assert count_parameters(module, trainable_only=False) == expected


def test_table2_totals():
    """Each alternative replaces the baseline ASPP: 137,104,500 − ASPP + module → Table II Params (M)."""
    paper = {"nonlocal": 140.97, "largeconv": 157.75, "ppm": 142.03, "fca": 143.52}
    with torch.device("meta"):
        aspp = count_parameters(build_context("aspp", 4096, 256))
        for name, millions in paper.items():
            total = 137_104_500 - aspp + count_parameters(build_context(name, 4096, 256))
            assert round(total / 1e6, 2) == millions, name


def test_srm_switch_is_exactly_the_srm_conv():
    for form in ("code", "paper"):
        with_srm = count_parameters(FCAContext(32, 16, form=form))
        without = count_parameters(FCAContext(32, 16, form=form, srm=False))
        assert with_srm - without == 18  # 3×3 conv 2 → 1, no bias


def test_srm_with_zero_conv_scales_by_one_and_a_half():
    """M_s = σ(0) = 0.5, so SRM gives 0.5·F + F (Eq. 5-6)."""
    torch.manual_seed(0)
    with_srm, without = FCAContext(32, 16).eval(), FCAContext(32, 16, srm=False).eval()
    without.load_state_dict({k: v for k, v in with_srm.state_dict().items() if not k.startswith("sa.")})
    nn.init.zeros_(with_srm.sa.conv.weight)
    x = torch.randn(1, 32, 9, 9)
    torch.testing.assert_close(with_srm(x), 1.5 * without(x))


def test_fca_official_state_dict_keys():
    """Keys and shapes equal the released checkpoint's ``fca.*`` minus the unused ``fcaN.bn.*``."""
    expected = {
        "sa.conv.weight": (1, 2, 3, 3),
        "ca.sharedMLP.0.weight": (256, 256, 1, 1),
        "ca.sharedMLP.2.weight": (256, 256, 1, 1),
        "global_avg_pool.1.weight": (256, 4096, 1, 1),
        "conv1.weight": (256, 1280, 1, 1),
    }
    for bn in ("global_avg_pool.2", "bn1"):
        expected |= {f"{bn}.{s}": (256,) for s in ("weight", "bias", "running_mean", "running_var")}
        expected[f"{bn}.num_batches_tracked"] = ()
    for i, k in enumerate((1, 3, 5, 7), start=1):
        expected |= {
            f"fca{i}.conv1_1.weight": (256, 4096, k, 1),
            f"fca{i}.conv1_2.weight": (256, 256, 1, k),
            f"fca{i}.conv2_1.weight": (256, 4096, 1, k),
            f"fca{i}.conv2_2.weight": (256, 256, k, 1),
        }
    with torch.device("meta"):
        state = FCAContext(4096, 256).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.mark.parametrize(("stride", "dilations"), [(8, (1, 12, 24, 36)), (16, (1, 6, 12, 18))])
def test_fca_code_dilations(stride, dilations):
    fca = FCAContext(8, 4, output_stride=stride)
    got = tuple(getattr(fca, f"fca{i}").conv1_1.dilation[0] for i in range(1, 5))
    assert got == dilations
    assert FCAContext(8, 4, form="paper", output_stride=stride).fca4.conv1_1.dilation == (1, 1)


def test_channel_attention_shared_in_code_form_per_branch_in_paper_form():
    assert len(list(FCAContext(8, 4).ca.sharedMLP)) == 3  # conv, ReLU, conv — one module
    paper = FCAContext(8, 4, form="paper")
    assert len(paper.ca) == 4 and all(len(ca.sharedMLP) == 1 for ca in paper.ca)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="output_stride"):
        FCAContext(8, 4, output_stride=32)
    with pytest.raises(ValueError, match="form"):
        FCAContext(8, 4, form="Paper")
    with pytest.raises(KeyError, match="aspp"):
        build_context("psp", 8, 4)
    with pytest.raises(TypeError, match="output_stride"):
        build_context("ppm", 8, 4, output_stride=8)


def test_frozen_stats_batchnorm():
    bn = FrozenStatsBatchNorm2d(3)
    nn.init.constant_(bn.weight, 2.0)
    nn.init.constant_(bn.bias, 0.5)
    seq = nn.Sequential(bn).train()
    assert not bn.training
    x = torch.randn(1, 3, 1, 1) * 5 + 3  # batch 1, 1×1: batch statistics would fail
    out = seq(x)
    torch.testing.assert_close(out, 2.0 * x / (1 + bn.eps) ** 0.5 + 0.5)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and torch.equal(bn.running_var, torch.ones(3))
    assert bn.weight.requires_grad and bn.bias.requires_grad


def test_aspp_image_pooling_branch_is_spatially_constant():
    aspp = build_context("aspp", 8, 4).eval()
    pooled = aspp.global_avg_pool(torch.randn(2, 8, 7, 5))
    assert pooled.shape == (2, 4, 7, 5)
    torch.testing.assert_close(pooled, pooled[:, :, :1, :1].expand_as(pooled))


def test_non_local_uniform_affinity_averages_g():
    """θ = 0 gives a uniform softmax over keys, so y = mean_j g_j at every position."""
    torch.manual_seed(0)
    nl = build_context("nonlocal", 8, 4).eval()
    nn.init.zeros_(nl.conv_theta.weight)
    x = torch.randn(2, 8, 5, 6)
    g_mean = nl.conv_g(x).mean(dim=(2, 3), keepdim=True).expand(-1, -1, 5, 6)
    expected = nl.project(nl.conv_mask(g_mean) + x)
    torch.testing.assert_close(nl(x), expected)


def test_non_local_softmax_direction_matters():
    torch.manual_seed(0)
    keys = build_context("nonlocal", 8, 4).eval()
    queries = build_context("nonlocal", 8, 4, softmax_over="queries").eval()
    queries.load_state_dict(keys.state_dict())
    x = torch.randn(1, 8, 5, 5)
    assert not torch.allclose(keys(x), queries(x))
