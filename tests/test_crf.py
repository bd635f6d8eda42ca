"""Dense CRF (method §7.7): sharpening, pydensecrf buffer rules (stack §5), files, process pool."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsfcn.infer.crf import (
    CRFJob,
    CRFOptions,
    crf_mask,
    crf_probs_from_fg,
    dense_crf,
    load_fg,
    run_crf_jobs,
    save_probs,
)

H, W = 40, 64


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red disc on blue (noisy) and a blurry, shifted, too large fg probability map."""
    yy, xx = np.mgrid[:H, :W]
    true = ((xx - 32) ** 2 + (yy - 20) ** 2 < 12**2).astype(np.uint8)
    rng = np.random.default_rng(seed)
    img = np.where(true[..., None] == 1, [200, 40, 40], [40, 60, 200]) + rng.normal(0, 8, (H, W, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    blur = 1 / (1 + np.exp((np.hypot(xx - 29, yy - 20) - 15) / 3.0))
    return img, true, blur.astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_crf_sharpens_a_blurry_mask():
    img, true, blur = scene()
    before = iou(blur > 0.5, true == 1)
    q = dense_crf(img, np.stack([1 - blur, blur]))
    assert q.shape == (2, H, W) and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(0), 1.0, atol=1e-4)
    after = iou(q.argmax(0) == 1, true == 1)
    assert before < 0.7 and after > 0.95
    fg = np.zeros((3, H, W), np.float32)  # 4 classes; class 1 holds the blob, 2 and 3 dropped
    fg[0] = blur
    mask = crf_mask(img, fg)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert iou(mask == 1, true == 1) > 0.95


def test_authors_crf_background():
    fg = np.array([[[0.2, 0.9]], [[0.1, 0.0]]], dtype=np.float32)  # (2, 1, 2)
    probs = crf_probs_from_fg(fg, bg_pow=5)
    np.testing.assert_allclose(probs[0], [[0.8**5, 0.1**5]], rtol=1e-5)
    np.testing.assert_array_equal(probs[1:], fg)


def test_read_only_strided_and_float64_inputs_are_accepted():
    img, true, blur = scene()
    probs = np.stack([1 - blur, blur]).astype(np.float64)
    ref = dense_crf(img, probs.astype(np.float32)).argmax(0)
    read_only = np.asarray(Image.fromarray(img))  # read-only buffer: pydensecrf's ValueError if passed as is
    assert not read_only.flags.writeable
    np.testing.assert_array_equal(dense_crf(read_only, probs).argmax(0), ref)
    mirrored = img[:, ::-1]  # not C-contiguous
    out = dense_crf(mirrored, probs[:, :, ::-1]).argmax(0)
    np.testing.assert_array_equal(out[:, ::-1], ref)
    with pytest.raises(ValueError, match="does not match"):
        dense_crf(img[:10], probs)


def test_probs_file_round_trip_keeps_only_kept_channels(tmp_path):
    rng = np.random.default_rng(1)
    probs = rng.random((5, 6, 7)).astype(np.float32)
    probs[[1, 3]] = 0
    save_probs(tmp_path / "a.npz", probs, kept=[2, 4])
    fg = load_fg(tmp_path / "a.npz")
    assert fg.shape == (4, 6, 7)
    np.testing.assert_allclose(fg[[1, 3]], probs[[2, 4]], atol=1e-3)  # float16
    assert np.all(fg[[0, 2]] == 0)
    save_probs(tmp_path / "b.npz", probs, kept=[])
    assert load_fg(tmp_path / "b.npz").shape == (4, 6, 7)


@pytest.mark.parametrize("processes", [1, 2])
def test_pool_runs_jobs_and_reports_bad_ones(tmp_path, processes):
    from wsfcn.data.io import read_mask

    jobs = []
    for i in range(3):
        img, _, blur = scene(seed=i)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        fg = np.stack([blur, np.zeros_like(blur)])
        save_probs(tmp_path / f"{i}.npz", np.concatenate([np.zeros_like(blur)[None], fg]), kept=[1])
        jobs.append(
            CRFJob(
                f"im{i}", str(tmp_path / f"{i}.png"), str(tmp_path / f"{i}.npz"), str(tmp_path / f"o{i}.png")
            )
        )
    jobs.append(
        CRFJob("broken", str(tmp_path / "0.png"), str(tmp_path / "missing.npz"), str(tmp_path / "ob.png"))
    )
    results = dict(run_crf_jobs(jobs, CRFOptions(iterations=5), processes=processes))
    assert set(results) == {"im0", "im1", "im2", "broken"}
    assert results["im0"] is None and "missing.npz" in results["broken"]
    img, true, blur = scene(seed=2)
    expected = crf_mask(img, np.stack([blur, np.zeros_like(blur)]), CRFOptions(iterations=5))
    np.testing.assert_array_equal(read_mask(tmp_path / "o2.png"), expected)
    assert not (tmp_path / "ob.png").exists()
