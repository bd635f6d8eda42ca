"""Train/eval transforms (method §6.2): crop bounds, image-mask alignment, flip, jitter, normalisation."""

import numpy as np
import pytest
import torch
from PIL import Image

from wsfcn.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EvalTransform,
    TrainTransform,
    color_jitter,
    denormalize,
    normalize,
    random_resized_crop_box,
    shift_hue,
)

COLOURS = np.array(
    [[20, 20, 20], [230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 40]], dtype=np.uint8
)


def blocky_pair(seed: int = 0, height: int = 60, width: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """A mask of 10x10 blocks with random classes 0..4 and an image painting each class its colour."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 5, size=(height // 10, width // 10))
    mask = np.kron(blocks, np.ones((10, 10), dtype=int)).astype(np.uint8)
    return COLOURS[mask], mask


def test_crop_box_area_and_ratio_bounds():
    rng = np.random.default_rng(0)
    for scale in ((0.9, 1.0), (0.3, 0.8)):
        for _ in range(300):
            top, left, h, w = random_resized_crop_box(rng, 75, 100, scale=scale)
            assert top >= 0 and top + h <= 75 and left >= 0 and left + w <= 100
            share = h * w / (75 * 100)
            if (h, w) != (75, 100):  # not the fallback
                assert scale[0] - 0.03 <= share <= scale[1] + 0.03
                assert 3 / 4 - 0.03 <= w / h <= 4 / 3 + 0.03


def test_crop_box_fallback_is_centre_crop_clamped_to_ratio():
    # 10 x 100: no crop of >= 90% area fits an aspect within [3/4, 4/3] -> centre crop h=10, w=round(40/3)
    assert random_resized_crop_box(np.random.default_rng(0), 10, 100) == (0, 43, 10, 13)


@pytest.mark.parametrize("seed", range(8))
def test_train_transform_keeps_image_and_mask_aligned(seed):
    image, mask = blocky_pair(seed)
    t = TrainTransform(48, scale_min=0.5, scale_max=1.0, flip=True, color_jitter=False)
    out, raw, out_mask = t(image, mask, np.random.default_rng(seed))
    assert out.shape == raw.shape == (3, 48, 48)
    assert out_mask.shape == (48, 48) and out_mask.dtype == torch.int64
    assert set(out_mask.unique().tolist()) <= set(mask.flatten().tolist())
    m = out_mask.numpy()
    interior = np.ones_like(m, dtype=bool)  # pixels whose 5x5 neighbourhood has one class
    padded = np.pad(m, 2, mode="edge")
    for dy in range(5):
        for dx in range(5):
            interior &= padded[dy : dy + 48, dx : dx + 48] == m
    expected = COLOURS[m][interior] / 255.0
    got = raw.permute(1, 2, 0).numpy()[interior]
    assert interior.sum() > 200 and np.abs(got - expected).max() < 0.05


def test_flip_mirrors_the_unflipped_output():
    image, mask = blocky_pair(3)
    flipped_seen = plain_seen = False
    for seed in range(12):
        a = TrainTransform(40, flip=True, color_jitter=False)(image, mask, np.random.default_rng(seed))
        b = TrainTransform(40, flip=False, color_jitter=False)(image, mask, np.random.default_rng(seed))
        if torch.equal(a[2], b[2]) and torch.equal(a[1], b[1]):
            plain_seen = True
        else:
            assert torch.equal(a[2], b[2].flip(-1)) and torch.equal(a[1], b[1].flip(-1))
            flipped_seen = True
    assert flipped_seen and plain_seen


def test_raw_in_unit_range_and_consistent_with_normalised():
    image, mask = blocky_pair(1)
    out, raw, _ = TrainTransform(32)(image, mask, np.random.default_rng(5))
    assert raw.min() >= 0 and raw.max() <= 1
    torch.testing.assert_close(normalize(raw), out)
    torch.testing.assert_close(denormalize(out), raw, rtol=0, atol=1e-6)
    pixel = raw[:, 0, 0]
    expected = (pixel - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[:, 0, 0], expected)


def test_seeded_and_torch_generator_reproducible():
    image, mask = blocky_pair(2)
    t = TrainTransform(32)
    a = t(image, mask, np.random.default_rng(9))
    b = t(image, mask, np.random.default_rng(9))
    c = t(image, mask, np.random.default_rng(10))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and not torch.equal(a[0], c[0])
    d = t(image, mask, torch.Generator().manual_seed(3))
    e = t(image, mask, torch.Generator().manual_seed(3))
    assert torch.equal(d[0], e[0])
    with pytest.raises(TypeError, match="Generator"):
        t(image, mask, 3)


def test_color_jitter_brightness_range_and_off_switch():
    image = Image.fromarray(np.full((8, 8, 3), 100, dtype=np.uint8))
    ratios = []
    for seed in range(40):
        out = color_jitter(
            image, np.random.default_rng(seed), brightness=0.3, contrast=0, saturation=0, hue=0
        )
        ratios.append(np.asarray(out).mean() / 100.0)
    assert 0.69 <= min(ratios) < 0.8 and 1.2 < max(ratios) <= 1.31
    same = color_jitter(image, np.random.default_rng(0), brightness=0, contrast=0, saturation=0, hue=0)
    assert np.array_equal(np.asarray(same), np.asarray(image))
    image, mask = blocky_pair(4)
    off = TrainTransform(32, color_jitter=False)(image, mask, np.random.default_rng(1))
    on = TrainTransform(32, color_jitter=True)(image, mask, np.random.default_rng(1))
    assert torch.equal(off[2], on[2]) and not torch.equal(off[1], on[1])  # same geometry, new colours


def test_shift_hue_half_turn_turns_red_to_cyan():
    red = Image.fromarray(np.array([[[255, 0, 0]]], dtype=np.uint8))
    r, g, b = np.asarray(shift_hue(red, 0.5))[0, 0]
    assert r < 10 and g > 240 and b > 240
    assert np.asarray(shift_hue(red, 0.0))[0, 0].tolist() == [255, 0, 0]


def test_eval_transform_is_identity_geometry():
    image, mask = blocky_pair(5)
    out, raw, out_mask = EvalTransform()(image, mask)
    assert raw.shape == (3, 60, 80) and out.shape == (3, 60, 80)
    assert torch.equal((raw * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(image))
    assert torch.equal(out_mask, torch.from_numpy(mask.astype(np.int64)))
    with pytest.raises(ValueError, match="differ in size"):
        EvalTransform()(image, mask[:, :10])


def test_bad_transform_arguments():
    with pytest.raises(ValueError, match="scale_min"):
        TrainTransform(32, scale_min=0.0)
    with pytest.raises(ValueError, match="scale_min"):
        TrainTransform(32, scale_min=0.9, scale_max=0.8)
