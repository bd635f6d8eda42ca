"""PAMR (method §5) against a direct transcription of the definition."""

import pytest
import torch
import torch.nn.functional as F

from wsfcn.model.pamr import neighbour_offsets, pamr, pamr_affinity


def reference_pamr(image, masks, iterations, dilations):
    """Definition-level PAMR: one replicate pad per dilation, stacked neighbours, explicit sums."""
    image = F.interpolate(image, size=masks.shape[-2:], mode="bilinear", align_corners=True)

    def neighbours(x, with_centre):
        out = []
        for d in dilations:
            padded = F.pad(x, (d, d, d, d), mode="replicate")
            h, w = x.shape[-2:]
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (dy, dx) == (0, 0) and not with_centre:
                        continue
                    out.append(padded[..., d + dy * d : d + dy * d + h, d + dx * d : d + dx * d + w])
        return torch.stack(out, 2)

    sigma = neighbours(image, True).std(dim=2, keepdim=True)  # 9 * |D| values, unbiased
    diffs = (image.unsqueeze(2) - neighbours(image, False)).abs()
    alpha = torch.softmax(-(diffs / (1e-8 + 0.1 * sigma)).mean(1), dim=1)
    for _ in range(iterations):
        masks = (neighbours(masks, False) * alpha.unsqueeze(1)).sum(2)
    return masks


def test_matches_definition():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 20, 24)
    masks = torch.softmax(torch.randn(2, 5, 10, 12), dim=1)
    ours = pamr(image, masks, iterations=3, dilations=(1, 2, 4))
    ref = reference_pamr(image, masks, 3, (1, 2, 4))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_uniform_image_uniform_mask_unchanged():
    image = torch.full((1, 3, 16, 16), 0.4)
    masks = torch.softmax(torch.randn(1, 4, 1, 1), dim=1).expand(1, 4, 16, 16).contiguous()
    out = pamr(image, masks, iterations=10, dilations=(1, 2, 4, 8))
    torch.testing.assert_close(out, masks)


def test_masks_stay_normalised_and_nonnegative():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 21, 21)
    masks = torch.softmax(torch.randn(1, 6, 21, 21), dim=1)
    out = pamr(image, masks, iterations=10, dilations=(1, 2, 4, 8, 12, 24))
    assert out.min() >= 0
    torch.testing.assert_close(out.sum(1), torch.ones(1, 21, 21), rtol=1e-5, atol=1e-5)


def test_affinity_is_a_distribution_and_prefers_similar_colours():
    image = torch.zeros(1, 3, 9, 9)
    image[..., :, 5:] = 1.0  # a vertical edge
    alpha = pamr_affinity(image, (1,))
    assert alpha.shape == (1, 8, 9, 9)
    torch.testing.assert_close(alpha.sum(1), torch.ones(1, 9, 9))
    offsets = neighbour_offsets((1,))
    right = offsets.index((0, 1))
    up = offsets.index((-1, 0))
    # at (4, 4) the right neighbour crosses the edge, the upper one does not
    assert alpha[0, up, 4, 4] > 10 * alpha[0, right, 4, 4]


def test_refinement_snaps_blurry_mask_to_edge():
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8:] = 1.0
    fg = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    masks = torch.cat([1 - fg, fg], dim=1)
    out = pamr(image, masks, iterations=10, dilations=(1, 2))
    # inside each colour region the refined mask is flatter than the ramp
    assert out[0, 1, :, 9:].std() < masks[0, 1, :, 9:].std()
    assert out[0, 1, :, 8:].mean() > out[0, 1, :, :8].mean() + 0.3


def test_size_option_runs_at_requested_resolution():
    out = pamr(
        torch.rand(1, 3, 96, 96),
        torch.softmax(torch.randn(1, 3, 24, 24), 1),
        iterations=2,
        dilations=(1, 2),
        size=48,
    )
    assert out.shape == (1, 3, 48, 48)


@pytest.mark.parametrize(
    ("batch", "mask_size", "size"), [(5, (10, 10), 20), (7, (9, 13), 0), (3, (12, 12), 0)]
)
def test_chunked_batch_gives_the_values_of_one_pass(batch, mask_size, size):
    """Chunks of the batch (the CPU default) refine every image exactly as one pass does."""
    torch.manual_seed(0)
    image = torch.rand(batch, 3, 40, 40)
    masks = torch.softmax(torch.randn(batch, 4, *mask_size), dim=1)
    kwargs = {"iterations": 4, "dilations": (1, 2, 4), "size": size}
    one_pass = pamr(image, masks, chunk_values=0, **kwargs)
    per_image = 4 * (size * size if size else mask_size[0] * mask_size[1])
    for chunk_values in (1, 2 * per_image, 3 * per_image + 1, None):
        assert torch.equal(pamr(image, masks, chunk_values=chunk_values, **kwargs), one_pass), chunk_values
