"""Fusion modules (Tables I/II): shapes, gradients, parameter counts, alignment geometry, SF2 streams."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.model import count_parameters
from wsfcn.model.fusion import FUSION_MODULES, build_fusion
from wsfcn.model.fusion.align import AlignModule, flow_warp
from wsfcn.model.fusion.sf2 import SF2Core, SF2Fusion
from wsfcn.model.fusion.simple import ConcatFusion, MulFusion

VARIANTS = [(name, {}) for name in sorted(FUSION_MODULES)] + [
    ("sf2", {"form": "paper"}),
    ("sf2", {"align": False}),
    ("sum", {"form": "paper"}),
    ("mul", {"form": "paper"}),
]


def _up(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v))
def test_forward_backward(name, options):
    torch.manual_seed(0)
    module = build_fusion(name, 12, 16, 8, **options).train()
    low, high = torch.randn(2, 12, 17, 17), torch.randn(2, 16, 9, 9)
    deep, shallow = module(low, high)
    assert deep.shape == shallow.shape == (2, 8, 17, 17)
    assert torch.isfinite(deep).all() and torch.isfinite(shallow).all()
    ((deep * torch.randn_like(deep)).sum() + (shallow * torch.randn_like(shallow)).sum()).backward()
    for n, p in module.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {n}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"{name}: zero gradient for {n}"


def test_parameter_counts_at_256():
    with torch.device("meta"):
        sf2 = build_fusion("sf2", 256, 256, 256)
        paper = build_fusion("sf2", 256, 256, 256, form="paper")
        base = build_fusion("baseline", 256, 256, 256)
        others = {n: count_parameters(build_fusion(n, 256, 256, 256)) for n in ("sum", "mul", "concat")}
    assert count_parameters(sf2.sf2) == 4_724_736 and count_parameters(sf2.align) == 70_144
    assert count_parameters(paper.sf2) == 4 * 590_592 and count_parameters(paper.align) == 512 * 2 * 9 + 4
    assert count_parameters(base.fc8_skip) == 12_384
    assert count_parameters(base.fc8_x) == 700_928
    assert count_parameters(base.gci) == 263_680
    assert others == {"sum": 4_724_736, "mul": 4_724_736, "concat": 4_724_736 + 2 * 256 * 256 * 9}
    # Table II: baseline 137,104,500 with its fusion swapped → Params (M)
    totals = {n: round((137_104_500 - count_parameters(base) + c) / 1e6, 2) for n, c in others.items()}
    assert totals == {"sum": 140.85, "mul": 140.85, "concat": 142.03}
    assert round((137_104_500 - count_parameters(base) + count_parameters(sf2)) / 1e6, 2) == 140.92


def test_official_state_dict_keys():
    """``fusion.align.*`` / ``fusion.sf2.*`` equal the released checkpoint's ``align1.*`` / ``sf2.*``."""
    expected = {
        "align.down_h.weight": (128, 256, 1, 1),
        "align.down_l.weight": (128, 256, 1, 1),
        "align.flow_make.weight": (2, 256, 3, 3),
    }
    for i in "1234":
        for s in "hv":
            expected |= {f"sf2.conv{i}{s}.weight": (256, 256, 3, 3), f"sf2.conv{i}{s}.bias": (256,)}
            expected |= {
                f"sf2.bn{i}{s}.{k}": (256,) for k in ("weight", "bias", "running_mean", "running_var")
            }
            expected[f"sf2.bn{i}{s}.num_batches_tracked"] = ()
    with torch.device("meta"):
        state = SF2Fusion(256, 256, 256).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.mark.parametrize("form", ["code", "paper"])
def test_zero_flow_is_align_corners_upsampling(form):
    torch.manual_seed(0)
    align = AlignModule(6, 5, form=form).eval()
    conv = align.flow_make if form == "code" else align.flow_make[0]
    nn.init.zeros_(conv.weight)
    low, high = torch.randn(2, 6, 17, 13), torch.randn(2, 5, 9, 7)
    torch.testing.assert_close(align(low, high), _up(high, (17, 13)), atol=1e-5, rtol=1e-5)


def test_flow_units():
    """Paper: one unit = one output pixel, so +2 px at 9 → 17 (s = 2) reads one input pixel further;
    code: one unit = 1/W_out normalised, so the same shift is a flow of 4·W/(W−1)."""
    torch.manual_seed(0)
    high = torch.randn(1, 3, 9, 9)
    up = _up(high, (17, 17))
    flow = torch.zeros(1, 2, 17, 17)
    flow[:, 0] = 2.0
    shifted = flow_warp(high, flow, unit="paper")
    torch.testing.assert_close(shifted[..., :15], up[..., 2:], atol=1e-5, rtol=1e-5)
    # zeros padding: column 15 reads x = 8.5 (half the last input column), column 16 reads x = 9 (outside)
    torch.testing.assert_close(shifted[..., 15], 0.5 * up[..., 16], atol=1e-5, rtol=1e-5)
    assert shifted[..., 16].abs().max() < 1e-6
    flow[:, 0] = 4.0 * 17 / 16
    torch.testing.assert_close(flow_warp(high, flow, unit="code"), shifted, atol=1e-5, rtol=1e-5)
    flow = torch.zeros(1, 2, 17, 17)
    flow[:, 1] = -2.0  # y: one input row up
    torch.testing.assert_close(
        flow_warp(high, flow, unit="paper")[..., 2:, :], up[..., :15, :], atol=1e-5, rtol=1e-5
    )


def test_sf2_streams_deep_is_high_stream():
    """Official names: ``h`` = low stream → shallow, ``v`` = high stream → deep."""
    torch.manual_seed(0)
    fusion = SF2Fusion(6, 5, 4).eval()
    low, high = torch.randn(1, 6, 9, 9), torch.randn(1, 5, 5, 5)
    nn.init.zeros_(fusion.sf2.conv4v.weight)
    nn.init.zeros_(fusion.sf2.conv4v.bias)
    deep, shallow = fusion(low, high)
    assert torch.equal(deep, torch.zeros_like(deep)) and shallow.abs().sum() > 0
    assert fusion.sf2.conv1h.in_channels == 6 and fusion.sf2.conv1v.in_channels == 5


def test_sf2_code_form_matches_its_equations():
    """L' = E4l(E3l(L2⊙H2) + L1), H' = E4h(E3h(L2⊙H2) + H1), written out with the module's layers."""
    torch.manual_seed(0)
    core = SF2Core(6, 5, 4).eval()
    low, high = torch.randn(2, 6, 7, 7), torch.randn(2, 5, 7, 7)

    def e(name, x):
        return torch.relu(getattr(core, f"bn{name}")(getattr(core, f"conv{name}")(x)))

    low1, high1 = e("1h", low), e("1v", high)
    product = e("2h", low1) * e("2v", high1)
    low_out, high_out = core(low, high)
    torch.testing.assert_close(low_out, e("4h", e("3h", product) + low1))
    torch.testing.assert_close(high_out, e("4v", e("3v", product) + high1))


def test_sf2_paper_form_has_four_blocks():
    core = SF2Core(6, 5, 4, form="paper")
    convs = sorted(n for n, m in core.named_children() if isinstance(m, nn.Conv2d))
    assert convs == ["conv1h", "conv1v", "conv4h", "conv4v"]


def test_mul_is_sf2_without_alignment():
    torch.manual_seed(0)
    sf2, mul = SF2Fusion(6, 5, 4, align=False).eval(), MulFusion(6, 5, 4).eval()
    mul.load_state_dict(sf2.state_dict())
    low, high = torch.randn(1, 6, 9, 9), torch.randn(1, 5, 5, 5)
    for a, b in zip(sf2(low, high), mul(low, high), strict=True):
        torch.testing.assert_close(a, b)


def test_concat_widths_and_paper_form_rejected():
    concat = ConcatFusion(6, 5, 4)
    assert concat.sf2.conv3h.in_channels == concat.sf2.conv3v.in_channels == 8
    assert concat.sf2.conv2h.in_channels == 4
    with pytest.raises(ValueError, match="concat"):
        ConcatFusion(6, 5, 4, form="paper")


def test_baseline_gci_with_zero_global_cues():
    """fc_deep ≡ 0 in eval → γ = β = 0 → shallow = fc_cls(ReLU(fc_skip(low)))."""
    torch.manual_seed(0)
    base = build_fusion("baseline", 6, 5, 4).eval()
    nn.init.zeros_(base.gci.fc_deep[0].weight)
    low, high = torch.randn(2, 6, 9, 9), torch.randn(2, 5, 5, 5)
    deep, shallow = base(low, high)
    torch.testing.assert_close(deep, base.fc8_x(torch.cat([_up(high, (9, 9)), base.fc8_skip(low)], 1)))
    torch.testing.assert_close(shallow, base.gci.fc_cls(torch.relu(base.gci.fc_skip(low))))


def test_builder_errors():
    with pytest.raises(KeyError, match="sf2"):
        build_fusion("none", 4, 4, 4)
    with pytest.raises(TypeError, match="align"):
        build_fusion("sum", 4, 4, 4, align=True)
    with pytest.raises(ValueError, match="form"):
        build_fusion("sf2", 4, 4, 4, form="eq")
