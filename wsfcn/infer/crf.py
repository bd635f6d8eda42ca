"""Dense CRF post-processing (method §7 step 7), run across the cores in a process pool.

The CRF input replaces the merged background by ``(1 - max_c fg_c) ** bg_pow`` (``bg_pow`` 5, which
differs from the no-CRF path), the unary is ``-log(clip(p, 1e-5, 1))``, the pairwise terms are a
Gaussian (sxy 3, compat 3) and a bilateral (sxy 30 for WS-FCN, 80 for the baseline; srgb 13,
compat 10) on the uint8 RGB image, and 10 mean-field iterations are run before the argmax.

pydensecrf is single-threaded and strict about its buffers (stack §5): the unary must be float32
and C-contiguous, the image uint8, C-contiguous *and writable*; both are copied here as needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from wsfcn.infer.options import DEFAULT_CRF, CRFOptions


def crf_probs_from_fg(fg: np.ndarray, bg_pow: float = 5.0) -> np.ndarray:
    """fg: (C-1, H, W) merged fg probabilities -> (C, H, W) float32 ``[(1 - max fg)^bg_pow, fg]``."""
    fg = np.asarray(fg, dtype=np.float32)
    bg = np.clip(1.0 - fg.max(0, initial=0.0), 0.0, 1.0) ** bg_pow
    return np.concatenate([bg[None], fg]).astype(np.float32, copy=False)


def dense_crf(image_rgb: np.ndarray, probs: np.ndarray, settings: CRFOptions = DEFAULT_CRF) -> np.ndarray:
    """Mean-field dense CRF.

    Args:
        image_rgb: (H, W, 3) uint8 (read-only or strided arrays are fine: copied if needed).
        probs: (C, H, W) probabilities (clipped to [1e-5, 1] before the log).

    Returns:
        (C, H, W) float32 marginals Q.
    """
    import pydensecrf.densecrf as dcrf

    num_classes, height, width = probs.shape
    if image_rgb.shape != (height, width, 3):
        raise ValueError(f"image {image_rgb.shape} does not match probabilities {probs.shape} (need H, W, 3)")
    image = np.require(image_rgb, dtype=np.uint8, requirements=["C_CONTIGUOUS", "WRITEABLE"])
    unary = -np.log(np.clip(probs.reshape(num_classes, -1), 1e-5, 1.0))
    unary = np.ascontiguousarray(unary, dtype=np.float32)
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=settings.gauss_sxy, compat=settings.gauss_compat)
    crf.addPairwiseBilateral(
        sxy=settings.bilateral_sxy,
        srgb=settings.bilateral_srgb,
        rgbim=image,
        compat=settings.bilateral_compat,
    )
    q = crf.inference(settings.iterations)
    return np.asarray(q, dtype=np.float32).reshape(num_classes, height, width)


def crf_mask(image_rgb: np.ndarray, fg: np.ndarray, settings: CRFOptions = DEFAULT_CRF) -> np.ndarray:
    """The authors' CRF step: fg (C-1, H, W) merged fg probabilities -> (H, W) uint8 labels."""
    q = dense_crf(image_rgb, crf_probs_from_fg(fg, settings.bg_pow), settings)
    return q.argmax(0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# files and the process pool
def save_probs(path: str | Path, probs: np.ndarray, kept: Iterable[int]) -> None:
    """Store the kept fg channels of (C, H, W) ``probs`` as compressed float16 (.npz)."""
    kept = np.asarray(sorted(kept), dtype=np.int16)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    fg = probs[kept].astype(np.float16) if kept.size else np.zeros((0,) + probs.shape[1:], np.float16)
    np.savez_compressed(tmp, fg=fg, classes=kept, num_classes=np.int16(probs.shape[0]))
    tmp.replace(path)


def load_fg(path: str | Path) -> np.ndarray:
    """Inverse of :func:`save_probs`: (C-1, H, W) float32 fg probabilities, dropped classes zero."""
    with np.load(path) as data:
        fg, classes, num_classes = data["fg"], data["classes"], int(data["num_classes"])
    out = np.zeros((num_classes - 1,) + fg.shape[1:], dtype=np.float32)
    out[classes.astype(np.int64) - 1] = fg
    return out


@dataclass(frozen=True)
class CRFJob:
    """One image: where its RGB, its saved probabilities and its output mask are."""

    name: str
    image_path: str
    probs_path: str
    out_path: str


def _run_job(job: CRFJob, settings: dict) -> tuple[str, str | None]:
    try:
        from wsfcn.data.io import read_rgb, write_mask

        image = read_rgb(job.image_path)
        fg = load_fg(job.probs_path)
        if fg.shape[1:] != image.shape[:2]:
            raise ValueError(f"{job.probs_path}: probabilities {fg.shape[1:]} vs image {image.shape[:2]}")
        write_mask(job.out_path, crf_mask(image, fg, CRFOptions(**settings)))
        return job.name, None
    except (OSError, ValueError, KeyError) as err:
        return job.name, f"{type(err).__name__}: {err}"


def run_crf_jobs(
    jobs: list[CRFJob], settings: CRFOptions = DEFAULT_CRF, processes: int = 0
) -> Iterator[tuple[str, str | None]]:
    """Run jobs in ``processes`` worker processes (0: one per core; 1: in this process).

    Yields ``(name, error or None)`` as images finish (any order); a failing image does not stop
    the others.
    """
    processes = processes if processes > 0 else (os.cpu_count() or 1)
    processes = min(processes, max(len(jobs), 1))
    if processes == 1:
        for job in jobs:
            yield _run_job(job, asdict(settings))
        return
    # forkserver: one clean server process imports the readers once; workers fork from it
    context = get_context("forkserver")
    context.set_forkserver_preload(["wsfcn.infer.crf", "wsfcn.data.io", "pydensecrf.densecrf"])
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [pool.submit(_run_job, job, asdict(settings)) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


def refine_folder(
    ids: list[str],
    image_path: Callable[[str], str | Path],
    probs_dir: Path,
    masks_dir: Path,
    settings: CRFOptions,
    processes: int,
    *,
    progress: bool,
    warn: bool = False,
) -> list[dict[str, str]]:
    """Dense CRF of ``probs_dir/<id>.npz`` into ``masks_dir/<id>.png`` for every id (:func:`run_crf_jobs`);
    returns the images it skipped as ``{"id", "path", "error"}`` (with ``warn`` also said on stderr)."""
    import sys

    from tqdm import tqdm

    jobs = [
        CRFJob(i, str(image_path(i)), str(probs_dir / f"{i}.npz"), str(masks_dir / f"{i}.png")) for i in ids
    ]
    skipped = []
    results = run_crf_jobs(jobs, settings, processes)
    for name, error in tqdm(results, total=len(jobs), desc="crf", unit="img", disable=not progress):
        if error:
            if warn:
                tqdm.write(f"crf: skipped {name}: {error}", file=sys.stderr)
            skipped.append({"id": name, "path": str(image_path(name)), "error": error})
    return skipped
