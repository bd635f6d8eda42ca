"""Multi-scale + flip inference (method §7): flip, scales, padding, class filters, background."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from wsfcn.infer.multiscale import make_views, normalise, predict_image, probs_to_mask
from wsfcn.infer.options import InferOptions


class Pointwise(nn.Module):
    """Eval-contract stand-in: 1x1 conv fg logits + constant bg logit, softmax; flip-equivariant.

    ``ramp`` adds a left-to-right ramp to class 1's logit, which breaks flip equivariance.
    """

    def __init__(self, num_classes: int = 4, ramp: float = 0.0, score_bias: tuple[float, ...] = ()) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, num_classes - 1, 1)
        self.ramp = ramp
        self.score_bias = torch.tensor(score_bias) if score_bias else None
        self.calls: list[tuple[int, ...]] = []
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append(tuple(x.shape))
        self.inputs.append(x.clone())
        fg = self.conv(x)
        if self.ramp:
            fg[:, 0] += self.ramp * torch.linspace(-1, 1, x.shape[-1])
        logits = torch.cat([torch.ones_like(fg[:, :1]), fg], 1)
        scores = fg.mean((2, 3)) if self.score_bias is None else self.score_bias.expand(x.shape[0], -1)
        return scores, torch.softmax(logits, 1)


def image(h: int = 12, w: int = 17, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def masks_of(model: nn.Module, img: np.ndarray) -> torch.Tensor:
    """A direct forward pass (not recorded in ``model.calls``)."""
    with torch.no_grad():
        out = model(normalise(img)[None])[1][0]
    model.calls.pop()
    model.inputs.pop()
    return out


ALL = dict(fp_cut=-1.0)  # sigmoid > -1 always: keep every class


def test_single_scale_equals_one_forward_pass():
    model, img = Pointwise().eval(), image()
    probs, kept = predict_image(model, img, InferOptions(scales=[1.0], flip=False, **ALL))
    expected = masks_of(model, img).numpy()
    assert probs.shape == (4, 12, 17) and probs.dtype == np.float32 and kept == [1, 2, 3]
    np.testing.assert_allclose(probs[1:], expected[1:], atol=1e-6)
    assert np.all(probs[0] == 0.25)
    assert model.calls == [(1, 3, 12, 17)]


def test_flip_equivariant_model_same_with_and_without_flip():
    model, img = Pointwise().eval(), image()
    a, _ = predict_image(model, img, InferOptions(scales=[1.0], flip=False, **ALL))
    b, _ = predict_image(model, img, InferOptions(scales=[1.0], flip=True, **ALL))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert model.calls[-1] == (2, 3, 12, 17)  # plain + mirrored in one pass


def test_flip_averages_plain_and_unflipped_mirror():
    model, img = Pointwise(ramp=3.0).eval(), image()
    probs, _ = predict_image(model, img, InferOptions(scales=[1.0], flip=True, **ALL))
    plain = masks_of(model, img)
    mirrored = masks_of(model, np.ascontiguousarray(img[:, ::-1])).flip(-1)
    np.testing.assert_allclose(probs[1:], ((plain + mirrored) / 2)[1:].numpy(), atol=1e-6)
    no_flip, _ = predict_image(model, img, InferOptions(scales=[1.0], flip=False, **ALL))
    assert np.abs(no_flip - probs).max() > 1e-3  # the ramp model is not flip-equivariant


def test_multi_scale_without_flip_has_no_spurious_unflip():
    # The authors un-flip every odd index even without flip: [1, 1] would differ from [1].
    model, img = Pointwise(ramp=3.0).eval(), image()
    one, _ = predict_image(model, img, InferOptions(scales=[1.0], flip=False, **ALL))
    two, _ = predict_image(model, img, InferOptions(scales=[1.0, 1.0], flip=False, **ALL))
    np.testing.assert_allclose(one, two, atol=1e-6)


def test_scale_resizes_bicubic_and_maps_back_bilinear():
    model, img = Pointwise().eval(), image(12, 17)
    probs, _ = predict_image(model, img, InferOptions(scales=[0.5], flip=False, **ALL))
    small = np.array(Image.fromarray(img).resize((round(17 * 0.5), round(12 * 0.5)), Image.BICUBIC))
    assert model.calls == [(1, 3, 6, 8)]  # round(8.5) = 8, as Python's round in the authors' code
    back = F.interpolate(masks_of(model, small)[None], size=(12, 17), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(probs[1:], back[1:].numpy(), atol=1e-6)
    assert probs.shape == (4, 12, 17)


def test_multi_scale_mean_and_grouping():
    model, img = Pointwise().eval(), image()
    scales = [1.0, 0.5, 1.5]
    merged, _ = predict_image(model, img, InferOptions(scales=scales, flip=True, **ALL))
    singles = [predict_image(model, img, InferOptions(scales=[s], flip=True, **ALL))[0] for s in scales]
    np.testing.assert_allclose(merged[1:], np.mean(singles, 0)[1:], atol=1e-6)
    model.calls.clear()
    predict_image(model, img, InferOptions(scales=scales, flip=True, batch_size=1, **ALL))
    assert len(model.calls) == 6 and all(c[0] == 1 for c in model.calls)


def test_padding_is_centred_zero_and_cropped_back():
    model, img = Pointwise().eval(), image(10, 15)
    padded, _ = predict_image(
        model, img, InferOptions(scales=[1.0], flip=True, pad_size=32), gt_labels=[1, 2, 3]
    )
    x = model.inputs[-1]
    assert x.shape == (2, 3, 32, 32)
    top, left = (32 - 10) // 2, (32 - 15) // 2
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[top : top + 10, left : left + 15] = True
    assert torch.all(x[:, :, ~inside] == 0)
    torch.testing.assert_close(x[0, :, inside].reshape(3, 10, 15), normalise(img))
    torch.testing.assert_close(x[1, :, inside].reshape(3, 10, 15), normalise(img).flip(-1))
    plain, _ = predict_image(
        model, img, InferOptions(scales=[1.0], flip=True, pad_size=0), gt_labels=[1, 2, 3]
    )
    np.testing.assert_allclose(padded, plain, atol=1e-6)  # a pointwise model ignores the padding


def test_padding_grows_to_the_largest_scaled_side_and_batches_all():
    views = make_views(image(10, 15), [1.0, 2.0], True, pad_size=16)
    assert {tuple(x.shape) for x, _ in views} == {(3, 30, 30)}
    model = Pointwise().eval()
    predict_image(model, image(10, 15), InferOptions(scales=[1.0, 0.5, 2.0], flip=True, pad_size=16, **ALL))
    assert model.calls == [(6, 3, 30, 30)]


def test_fp_cut_filter_on_max_sigmoid_score():
    # sigmoid(-3) = 0.047 < 0.1 < sigmoid(0) = 0.5
    model, img = Pointwise(score_bias=(-3.0, 0.0, -3.0)).eval(), image()
    probs, kept = predict_image(model, img, InferOptions(scales=[1.0], flip=False, fp_cut=0.1))
    assert kept == [2]
    assert np.all(probs[[1, 3]] == 0) and np.all(probs[2] > 0)
    assert set(np.unique(probs_to_mask(probs))) <= {0, 2}


def test_gt_labels_section_setting_overrides_scores():
    model, img = Pointwise(score_bias=(-3.0, 0.0, -3.0)).eval(), image()
    probs, kept = predict_image(
        model, img, InferOptions(scales=[1.0], flip=False, fp_cut=0.1), gt_labels=[3, 1]
    )
    assert kept == [1, 3]
    assert np.all(probs[2] == 0) and np.all(probs[1] > 0) and np.all(probs[3] > 0)
    with pytest.raises(ValueError, match="gt_labels"):
        predict_image(model, img, InferOptions(scales=[1.0], flip=False), gt_labels=[4])


def test_background_power_mode():
    model, img = Pointwise().eval(), image()
    probs, _ = predict_image(
        model, img, InferOptions(scales=[1.0], flip=False, bg_mode="power", bg_pow=3.0, **ALL)
    )
    np.testing.assert_allclose(probs[0], masks_of(model, img)[0].numpy() ** 3, rtol=1e-5)
    with pytest.raises(ValueError, match="bg_mode"):
        predict_image(model, img, InferOptions(bg_mode="mean"))


def test_bad_inputs_raise_clearly():
    model = Pointwise().eval()
    with pytest.raises(ValueError, match="uint8"):
        predict_image(model, image().astype(np.float32))
    with pytest.raises(ValueError, match="too small"):
        predict_image(model, image(1, 1), InferOptions(scales=[0.4]))
    with pytest.raises(ValueError, match="scales"):
        predict_image(model, image(), InferOptions(scales=[]))
    with pytest.raises(ValueError, match="eval mode"):
        predict_image(Pointwise().train(), image())


def test_real_model_follows_the_contract():
    from wsfcn.config import ModelParams
    from wsfcn.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelParams(backbone="mini"), 9).eval()
    img = image(40, 52)
    probs, kept = predict_image(model, img, InferOptions(scales=[1.0, 0.5], flip=True, fp_cut=0.0))
    assert probs.shape == (9, 40, 52) and np.isfinite(probs).all() and kept == list(range(1, 9))
    mask = probs_to_mask(probs)
    assert mask.shape == (40, 52) and mask.dtype == np.uint8 and mask.max() < 9
