"""nGWP + focal scores, pseudo-GT, balanced mask CE and the stochastic gate on hand-computed tensors."""

import math

import pytest
import torch

from wsfcn.model.losses import balanced_mask_ce, classification_loss
from wsfcn.model.pseudo_labels import clean_masks, pseudo_gt
from wsfcn.model.scores import add_background, class_scores, focal_penalty, ngwp_scores
from wsfcn.model.stochastic_gate import StochasticGate


def test_background_logit_is_constant_one_and_first():
    fg = torch.zeros(1, 2, 2, 2)
    logits = add_background(fg)
    assert logits.shape == (1, 3, 2, 2)
    assert torch.all(logits[:, 0] == 1.0) and torch.all(logits[:, 1:] == 0.0)


def test_ngwp_by_hand():
    logits = torch.tensor([[[[2.0, 0.0]]]])  # (1, 1, 1, 2)
    masks = torch.tensor([[[[0.5, 0.25]]]])
    # (0.5*2 + 0.25*0) / (1 + 0.75)
    assert ngwp_scores(logits, masks).item() == pytest.approx(1.0 / 1.75)


def test_focal_penalty_by_hand():
    masks = torch.tensor([[[[0.2, 0.4]]]])  # mean 0.3
    expected = (1 - 0.3) ** 3 * math.log(0.01 + 0.3)
    assert focal_penalty(masks, 3, 0.01).item() == pytest.approx(expected, rel=1e-6)


def test_class_scores_drop_background():
    fg = torch.randn(2, 4, 3, 3)
    scores, masks, logits = class_scores(fg)
    assert scores.shape == (2, 4) and masks.shape == (2, 5, 3, 3)
    torch.testing.assert_close(masks.sum(1), torch.ones(2, 3, 3))
    full = ngwp_scores(logits, masks) + focal_penalty(masks)
    torch.testing.assert_close(scores, full[:, 1:])


def test_classification_loss_is_multilabel_soft_margin():
    scores = torch.tensor([[0.0, 2.0]])
    labels = torch.tensor([[1.0, 0.0]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -(math.log(sig(0.0)) + math.log(1 - sig(2.0))) / 2
    assert classification_loss(scores, labels).item() == pytest.approx(expected, rel=1e-6)


def test_pseudo_gt_by_hand():
    # 1 image, 3 classes, 1x4 pixels
    masks = torch.tensor([[[[0.9, 0.1, 0.5, 0.1]], [[0.1, 0.8, 0.5, 0.1]], [[0.0, 0.1, 0.45, 0.15]]]])
    # peaks: bg 0.9 -> tau 0.63; c1 0.8 -> 0.48; c2 0.45 -> 0.27
    # px0: bg only -> 0; px1: c1 only -> 1; px2: c1 (0.5>0.48) and c2 (0.45>0.27) -> 255; px3: none -> 255
    out = pseudo_gt(masks)
    assert out.tolist() == [[[0, 1, 255, 255]]]


def test_pseudo_gt_floor():
    masks = torch.tensor([[[[0.15, 0.1]], [[0.1, 0.19]]]])  # all peaks * k < 0.2 -> floor 0.2 claims nothing
    assert pseudo_gt(masks).tolist() == [[[255, 255]]]


def test_clean_masks_zeroes_absent_classes():
    masks = torch.ones(1, 3, 2, 2)
    out = clean_masks(masks, torch.tensor([[0.0, 1.0]]), (4, 4))
    assert out.shape == (1, 3, 4, 4)
    assert torch.all(out[:, 1] == 0)
    torch.testing.assert_close(out[:, [0, 2]], torch.ones(1, 2, 4, 4))


def test_balanced_ce_by_hand():
    logits = torch.zeros(1, 2, 1, 4)  # uniform: CE = log 2 everywhere
    target = torch.tensor([[[0, 0, 1, 255]]])
    labels = torch.tensor([[1.0]])  # one fg class -> 2 classes expected, 2 present
    # N=3, N_bg=2 -> w=(3-2)/4=0.25 ; N_1=1 -> w=(3-1)/4=0.5; mean over all 4 pixels
    expected = (0.25 + 0.25 + 0.5 + 0.0) * math.log(2) / 4
    assert balanced_mask_ce(logits, target, labels).item() == pytest.approx(expected, rel=1e-6)


def test_balanced_ce_gate_zero_when_classes_missing():
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 0], [1, 1]]])
    labels = torch.tensor([[1.0, 1.0]])  # two fg labels, pseudo-GT shows only one
    assert balanced_mask_ce(logits, target, labels).item() == 0.0


def test_stochastic_gate_eval_formula():
    gate = StochasticGate(0.3).eval()
    x1, x2 = torch.full((1, 1, 2, 2), 2.0), torch.full((1, 1, 2, 2), 10.0)
    torch.testing.assert_close(gate(x1, x2), torch.full((1, 1, 2, 2), 0.7 * 2 + 0.3 * 10))


def test_stochastic_gate_train_values_and_expectation():
    torch.manual_seed(0)
    gate = StochasticGate(0.3).train()
    x1, x2 = torch.full((1, 1, 200, 200), 2.0), torch.full((1, 1, 200, 200), 10.0)
    out = gate(x1, x2)
    mixed = (2.0 - 0.3 * 10.0) / 0.7
    is_mixed = torch.isclose(out, torch.tensor(mixed))
    assert torch.all(is_mixed | (out == 10.0))
    assert is_mixed.float().mean().item() == pytest.approx(0.7, abs=0.01)
    assert out.mean().item() == pytest.approx(2.0, abs=0.1)  # E[out] = x1
    # a batch of another shape draws its own mask
    assert gate(torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)).shape == (2, 3, 4, 4)
