"""Every (context, fusion) pair on the small backbone: forward, backward and gradient coverage."""

import itertools

import pytest
import torch

from wsfcn.config import FCAParams, LossParams, ModelParams, SF2Params
from wsfcn.model import WSFCNTrainOutput, build_model
from wsfcn.model.context import CONTEXT_MODULES
from wsfcn.model.fusion import FUSION_MODULES

PAIRS = list(itertools.product(sorted(CONTEXT_MODULES), sorted(FUSION_MODULES)))
LOSS = LossParams(pamr_iters=2, pamr_dilations=(1, 2))


def tiny_model(context="fca", fusion="sf2", **model_kw):
    torch.manual_seed(0)
    params = ModelParams(backbone="mini", context=context, fusion=fusion, head_channels=16, **model_kw)
    return build_model(params, num_classes=4, loss=LOSS)


def batch(size=32):
    images = torch.randn(2, 3, size, size)
    return images, torch.rand(2, 3, size, size), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize(("context", "fusion"), PAIRS)
def test_pair_forward_backward(context, fusion):
    model = tiny_model(context, fusion).train()
    images, raw, labels = batch()
    out = model(images, images_raw=raw, labels=labels)
    assert isinstance(out, WSFCNTrainOutput)
    assert out.scores.shape == (2, 3)
    assert out.masks.shape == out.refined.shape == (2, 4, 32, 32)
    assert out.logits.shape == (2, 4, 8, 8)
    assert out.pseudo_gt.shape == (2, 32, 32)
    loss = out.loss_cls + out.loss_mask
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("form", ["code", "paper"])
def test_paper_and_code_forms_run(form):
    model = tiny_model("fca", "sf2", fca=FCAParams(form=form), sf2=SF2Params(form=form)).train()
    images, raw, labels = batch()
    out = model(images, images_raw=raw, labels=labels)
    (out.loss_cls + out.loss_mask).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_eval_contract():
    model = tiny_model().eval()
    images = torch.randn(3, 3, 40, 36)
    with torch.no_grad():
        scores, masks = model(images)
    assert scores.shape == (3, 3)
    assert masks.shape == (3, 4, 40, 36)
    torch.testing.assert_close(masks.sum(1), torch.ones(3, 40, 36))


def test_eval_is_deterministic():
    model = tiny_model().eval()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images)[1], model(images)[1])


def test_mask_loss_gradient_reaches_only_logits_path():
    """PAMR and the pseudo-GT are detached: the mask loss alone still trains the decoder."""
    model = tiny_model().train()
    images, raw, labels = batch()
    out = model(images, images_raw=raw, labels=labels)
    assert not out.pseudo_gt.requires_grad and not out.refined.requires_grad
    out.loss_mask.backward()
    assert model.decoder[-1].weight.grad is not None


def test_context_dilations_param_reaches_aspp_and_fca():
    """``model.context_dilations`` overrides the paper's 12/24/36 (small feature maps need smaller ones)."""
    paper = build_model(ModelParams(backbone="mini", context="fca", head_channels=16), 5)
    assert paper.context.fca4.conv1_1.dilation == (36, 36)
    fca = build_model(
        ModelParams(backbone="mini", context="fca", head_channels=16, context_dilations=(2, 3, 4)), 5
    )
    assert [getattr(fca.context, f"fca{i}").conv1_1.dilation[0] for i in range(1, 5)] == [1, 2, 3, 4]
    aspp = build_model(
        ModelParams(
            backbone="mini", context="aspp", fusion="baseline", head_channels=16, context_dilations=(2, 3, 4)
        ),
        5,
    )
    dilations = sorted(m.dilation[0] for m in aspp.context.modules() if isinstance(m, torch.nn.Conv2d))
    assert dilations[-3:] == [2, 3, 4]
